"""The run spec: YAML validated into typed objects, with every rule that needs only the spec
checked here, at load time. Every error names the field path and the file, because a user fixing
a spec needs both. The spec imports nothing of babysit's but leaf tables (activations, penalties,
the augment ops' parameters); its sections are in sections.py, the `search:` section in search.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import re
import warnings

import yaml
from pydantic import ValidationError, field_validator, model_validator

from babysit import factories
from babysit.errors import BabysitWarning, SpecError
from babysit.losses import LOSSES, PYTHON_PREFIX, is_python
from babysit.schema import Strict
from babysit.spec.search import INT_TYPES, LOG_TYPES, ParamSpec, SearchSpec, StageSpec  # noqa: F401
from babysit.spec.sections import (KIND_INPUTS, MODEL_INPUTS, DataSpec, EarlyStopSpec, EMASpec,  # noqa: F401
                                   FinetuneSpec, InitSpec, LayerInit, ModelSpec, OptimSpec, RegularizerSpec,
                                   ScheduleSpec, TrainSpec, WatchSpec)

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
# The sections whose state a checkpoint holds: a resumed run may not change them.
RESUME_FIXED = ("data", "model", "optim", "schedule", "loss")
NAMES_EMBED_DIM = 10  # model.embed_dim when names data leave it out: MM3's n_embd (LECTURES.md §5)


class Spec(Strict):
    name: str = "run"
    seed: int = 0
    # What training minimizes (babysit/losses.py): cross_entropy, bce, mse or python:module:fn
    loss: str = "cross_entropy"
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    train: TrainSpec = TrainSpec(steps=1000)
    watch: WatchSpec = WatchSpec()
    finetune: FinetuneSpec = FinetuneSpec()
    search: Optional[SearchSpec] = None  # `babysit search`: the space and stages (search/space.py)

    @field_validator("loss")
    @classmethod
    def _loss(cls, v):
        if is_python(v):
            factories.split_ref(v[len(PYTHON_PREFIX):], "loss")
        elif v not in LOSSES:
            raise ValueError(f"unknown loss {v!r}; valid: {', '.join(LOSSES)}, or {PYTHON_PREFIX}module:function")
        return v

    @model_validator(mode="before")
    @classmethod
    def _names_embedding(cls, raw):
        """Names data are character indices: babysit's MLP needs an embedding, MM3's unless given."""
        if isinstance(raw, dict):
            data, model = raw.get("data") or {}, raw.get("model") or {}
            if isinstance(data, dict) and isinstance(model, dict) and data.get("kind", "names") == "names" \
                    and model.get("kind", "mlp") == "mlp" and "embed_dim" not in model:
                raw = {**raw, "model": {**model, "embed_dim": NAMES_EMBED_DIM}}
        return raw

    @model_validator(mode="after")
    def _check(self):
        if self.optim.name == "lbfgs" and self.train.batch_size != "full":
            raise ValueError("optim 'lbfgs' is for full-batch problems: set train.batch_size: full")
        if self.optim.name == "lbfgs" and self.train.precision == "fp16":
            raise ValueError("train.precision 'fp16' needs a gradient scaler, which optim 'lbfgs' (its line "
                             "search calls the loss itself) cannot take: use precision bf16 or fp32")
        last = self.train.steps
        if last is not None:
            warm = self.schedule.warmup_steps  # milestones count from the end of the warm-up
            late = [m for m in self.schedule.milestones if m >= 1 and m + warm >= last]
            if late:  # a shortened run (--set train.steps=...): the first thing people do
                warnings.warn(f"schedule.milestones {late} lie at or past the last step (train.steps = {last}, "
                              f"counted after {warm} warm-up steps): dropped; fractions of the run "
                              "(e.g. [0.5]) follow train.steps", BabysitWarning)
            if self.schedule.warmup_steps >= last:
                raise ValueError(f"schedule.warmup_steps ({self.schedule.warmup_steps}) must be "
                                 f"below train.steps ({last})")
        if self.model.embed_dim and self.data.kind != "names":
            raise ValueError(f"model.embed_dim is for character data (data.kind: names), not "
                             f"'{self.data.kind}'; remove it")
        if self.train.snapshots and self.schedule.name != "cosine_restarts":
            raise ValueError(f"train.snapshots needs schedule.name: cosine_restarts (a snapshot at the end "
                             f"of each cycle), got '{self.schedule.name}'; set schedule.cycle_steps too")
        if self.data.kind == "names" and self.model.kind not in ("mlp", "python"):
            raise ValueError(f"names data needs model.kind 'mlp' (with embed_dim) or a python model, "
                             f"got '{self.model.kind}'")
        reads, holds = MODEL_INPUTS.get(self.model.kind), KIND_INPUTS.get(self.data.kind)
        if reads and holds and reads != holds:
            fits = [k for k, v in MODEL_INPUTS.items() if v == holds]
            raise ValueError(f"model.kind '{self.model.kind}' reads {reads}, but data.kind '{self.data.kind}' "
                             f"holds {holds}: use model.kind {' or '.join(['mlp', *fits, 'python'])}")
        if self.data.kind == "names" and self.model.kind == "mlp" and not self.model.embed_dim:
            raise ValueError(f"names data are character indices: model.embed_dim must be set (MM3: "
                             f"{NAMES_EMBED_DIM}), got {self.model.embed_dim}")
        return self


_UNION_TAG = re.compile(r"^(int|float|str|bool|list\[.*\]|tuple\[.*\]|literal\[.*\]|function-.*)$")


def _format_errors(err: ValidationError, source: str) -> str:
    """One line for one problem; a line per problem under a heading when there are several."""
    fields: dict[str, list[str]] = {}  # a union's members fail one by one: one line per field
    for e in err.errors():
        # drop the tags pydantic adds for the members of a union ("int", "literal['full']")
        where = ".".join(str(p) for p in e["loc"] if not _UNION_TAG.match(str(p))) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling and its section)"
        got = e.get("input")
        shown = "" if e["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        fields.setdefault(where, []).append(msg + shown if not fields.get(where) else msg)
    lines = [f"{where}: {', or: '.join(msgs)}" for where, msgs in fields.items()]
    if len(lines) == 1:
        return f"invalid spec {source}: {lines[0]}"
    return "\n  ".join([f"invalid spec {source}:", *lines])


def _parse_value(text: str) -> Any:
    """`--set` values are YAML scalars/lists, so `optim.lr=1e-3` and `model.hidden=[64,64]` work."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"--set value {text!r} is not valid YAML: {exc}") from None


def apply_overrides(raw: dict, overrides: list[str], source: str) -> dict:
    for item in overrides:
        if "=" not in item:
            raise SpecError(f"--set expects key.path=value, got {item!r}")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise SpecError(f"--set {key}: '{p}' in {source} is a value, not a section")
            node = child
        node[parts[-1]] = _parse_value(value)
    return raw


def resolve_spec_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a shipped preset (`makemore-bn`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = PRESETS_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    names = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
    raise SpecError(f"no spec file '{name_or_path}' and no preset of that name; presets: {names}")


def spec_from_dict(raw: Any, source: str = "<dict>") -> Spec:
    if not isinstance(raw, dict):
        raise SpecError(f"invalid spec {source}: the top level must be a mapping of sections, "
                        f"got {type(raw).__name__}")
    try:
        return Spec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(_format_errors(err, source)) from None


def load_spec(name_or_path: str | Path, overrides: list[str] | None = None) -> Spec:
    path = resolve_spec_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid spec {path}: not valid YAML: {exc}") from None
    raw = {} if raw is None else raw
    if isinstance(raw, dict):
        data = raw.get("data")
        if isinstance(data, dict) and isinstance(data.get("path"), str) and not Path(data["path"]).is_absolute():
            data["path"] = str(path.parent.resolve() / data["path"])  # the file's paths are the file's; --set's are the shell's
        raw = resolve_code(apply_overrides(raw, overrides or [], str(path)), path.parent, str(path))
    return spec_from_dict(raw, str(path))


def resolve_code(raw: dict, base: Path, source: str) -> dict:
    """The user's code named in the spec (model.factory, data.factory, loss: python:...) by
    absolute path when it lies beside the spec (babysit.factories.resolve): the copy of the
    spec in a run folder must name the same code."""
    def fix(ref, field):
        if not isinstance(ref, str):
            return ref
        try:
            return factories.resolve(ref, base, field)
        except SpecError as exc:
            raise SpecError(f"invalid spec {source}:\n  {exc}") from None

    for section in ("model", "data"):
        node = raw.get(section)
        if isinstance(node, dict) and node.get("factory") is not None:
            raw = {**raw, section: {**node, "factory": fix(node["factory"], f"{section}.factory")}}
    loss = raw.get("loss")
    if isinstance(loss, str) and is_python(loss):
        raw = {**raw, "loss": PYTHON_PREFIX + fix(loss[len(PYTHON_PREFIX):], "loss")}
    return raw


def dump_spec(spec: Spec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def resume_changes(saved: Spec | dict, now: Spec) -> list[str]:
    """The RESUME_FIXED sections in which `now` differs from the spec a checkpoint was saved with."""
    if isinstance(saved, dict):  # a checkpoint's copy: fields added since it was written take their defaults
        try:
            saved = Spec.model_validate(saved)
        except ValidationError:
            pass
    saved = saved.model_dump(mode="json") if isinstance(saved, Spec) else saved
    current = now.model_dump(mode="json")
    return [k for k in RESUME_FIXED if saved.get(k) != current[k]]
