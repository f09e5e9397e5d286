"""The run spec: YAML validated into typed objects.

Every error names the field path and the file, because a user fixing a spec needs both.
Defaults follow LECTURES.md (Adam's betas, BatchNorm's eps, the MM3 batch of 32).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from babysit.search.space import SearchSpec

PRESETS_DIR = Path(__file__).parent / "presets"


class SpecError(ValueError):
    """A spec that cannot be used; the message names the field and the file."""


def _is_number_field(annotation) -> bool:
    return annotation in (int, float) or any(_is_number_field(a) for a in get_args(annotation))


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bools_for_numbers(cls, data):
        # pydantic's lax mode reads `true` as 1; YAML's `1e-3` arrives as a string and still needs
        # that lax mode, so booleans alone are refused here.
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                if isinstance(data.get(name), bool) and _is_number_field(field.annotation):
                    raise ValueError(f"{name} must be a number, got {data[name]}")
        return data


class DataSpec(_Strict):
    kind: Literal["names", "digits", "arrays", "images"] = "names"
    path: Optional[str] = None  # names file, .npz/.pt arrays, or an image folder
    context: int = Field(3, ge=1, description="names: characters of context")
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 42  # LECTURES.md §5: Python random.seed(42)
    image_size: Optional[tuple[int, int]] = None  # images: resize to (H, W)
    grayscale: bool = False
    num_classes: Optional[int] = Field(None, ge=2, description="arrays: default 1 + the largest train label")
    preprocess: Literal["none", "center", "standardize"] = "none"

    @model_validator(mode="after")
    def _check(self):
        if any(f < 0 for f in self.split) or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split must be three non-negative fractions summing to 1, got {list(self.split)}")
        if self.split[0] == 0 or self.split[1] == 0:
            raise ValueError(f"split needs a non-empty train and val part, got {list(self.split)}")
        if self.kind in ("arrays", "images") and not self.path:
            raise ValueError(f"data.kind '{self.kind}' needs data.path (a file or folder of yours)")
        return self


class LayerInit(_Strict):
    """How one group of layers starts. 'auto' = kaiming with the gain of the layer's activation."""

    weight: Literal["auto", "default", "zeros", "normal", "xavier", "kaiming", "orthogonal"] = "auto"
    std: float = Field(1.0, gt=0, description="std for weight: normal")
    scale: float = Field(1.0, ge=0, description="multiplier applied after init (MM3: output x 0.01)")
    bias: Literal["zeros", "normal", "default"] = "zeros"
    bias_std: float = Field(0.01, gt=0)


class InitSpec(_Strict):
    hidden: LayerInit = LayerInit()
    output: LayerInit = LayerInit()


Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu"]


class ModelSpec(_Strict):
    kind: Literal["mlp", "cnn"] = "mlp"
    embed_dim: Optional[int] = Field(None, ge=1, description="mlp on names: character embedding size")
    hidden: list[int] = Field(default_factory=lambda: [200])
    activation: Activation = "tanh"
    batchnorm: bool = False
    bn_momentum: float = Field(0.1, gt=0, le=1)  # PyTorch's default; MM3 uses 0.001 at batch 32
    output_batchnorm: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: Union[bool, Literal["auto"]] = "auto"  # auto: no bias in front of a BatchNorm
    init: InitSpec = InitSpec()
    # cnn
    channels: list[int] = Field(default_factory=lambda: [16, 32])
    kernel_size: int = Field(3, ge=1)
    pool: Literal["max", "avg"] = "max"

    @model_validator(mode="after")
    def _check(self):
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {self.hidden}")
        if self.kind == "cnn" and (not self.channels or any(c < 1 for c in self.channels)):
            raise ValueError(f"cnn needs channels >= 1, got {self.channels}")
        return self


class OptimSpec(_Strict):
    name: Literal["sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    alpha: float = Field(0.99, gt=0, lt=1, description="rmsprop decay rate")
    weight_decay: float = Field(0.0, ge=0)
    decay_all: bool = Field(False, description="also decay biases and norm parameters")

    @model_validator(mode="after")
    def _check(self):
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0 (try momentum: 0.9)")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {list(self.betas)}")
        return self


class ScheduleSpec(_Strict):
    name: Literal["constant", "step", "exponential", "inverse_time", "cosine", "cosine_restarts",
                  "plateau"] = "constant"
    milestones: list[int] = Field(default_factory=list, description="step: steps where lr *= factor")
    factor: float = Field(0.1, gt=0, le=1, description="step / plateau: lr multiplier")
    gamma: float = Field(0.9999, gt=0, le=1, description="exponential: lr multiplier per step")
    decay: float = Field(1e-3, ge=0, description="inverse_time: lr0 / (1 + decay * t)")
    min_lr: float = Field(0.0, ge=0)
    cycle_steps: int = Field(1000, ge=1, description="cosine_restarts: length of the first cycle")
    cycle_mult: int = Field(1, ge=1)
    patience: int = Field(3, ge=0, description="plateau: evaluations without improvement")
    warmup_steps: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self):
        if self.milestones != sorted(self.milestones) or any(m <= 0 for m in self.milestones):
            raise ValueError(f"milestones must be positive and increasing, got {self.milestones}")
        if self.name == "step" and not self.milestones:
            raise ValueError("schedule 'step' needs milestones, e.g. [100000]")
        return self


class EarlyStopSpec(_Strict):
    patience: int = Field(5, ge=1, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0)


class TrainSpec(_Strict):
    steps: Optional[int] = Field(None, ge=1)
    epochs: Optional[int] = Field(None, ge=1)
    batch_size: Union[int, Literal["full"]] = 32
    eval_every: int = Field(1000, ge=1)
    log_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(5000, ge=1)
    grad_clip: Optional[float] = Field(None, gt=0)
    early_stopping: Optional[EarlyStopSpec] = None
    device: str = "auto"

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1 or 'full', got {v}")
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.steps is None and self.epochs is None:
            raise ValueError("set train.steps or train.epochs")
        if self.steps is not None and self.epochs is not None:
            raise ValueError(f"set train.steps or train.epochs, not both (got {self.steps} and {self.epochs})")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu or cuda[:N], got '{self.device}'")
        return self


class WatchSpec(_Strict):
    """Per-layer statistics while training (LECTURES.md §3); sampled, so the cost stays small."""

    enabled: bool = True
    every: int = Field(200, ge=1, description="sample one step in this many (and step 1); cost: benchmarks/watch_overhead.py")
    bins: int = Field(40, ge=4, le=512, description="histogram bins")
    # Off by default: measured 18% slower on a CPU (benchmarks/watch_overhead.py --grad-norm-every-step).
    grad_norm_every_step: bool = Field(False, description="global gradient norm at every step")


class Spec(_Strict):
    name: str = "run"
    seed: int = 0
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    train: TrainSpec = TrainSpec(steps=1000)
    watch: WatchSpec = WatchSpec()
    search: Optional[SearchSpec] = None  # `babysit search`: the space and stages (search/space.py)

    @model_validator(mode="after")
    def _check(self):
        if self.optim.name == "lbfgs" and self.train.batch_size != "full":
            raise ValueError("optim 'lbfgs' is for full-batch problems: set train.batch_size: full")
        last = self.train.steps
        if last is not None:
            warm = self.schedule.warmup_steps  # milestones count from the end of the warm-up
            late = [m for m in self.schedule.milestones if m + warm >= last]
            if late:
                raise ValueError(f"schedule.milestones {late} lie at or past the last step "
                                 f"(train.steps = {last}, counted after {warm} warm-up steps); "
                                 "they would never take effect")
            if self.schedule.warmup_steps >= last:
                raise ValueError(f"schedule.warmup_steps ({self.schedule.warmup_steps}) must be "
                                 f"below train.steps ({last})")
        if self.model.embed_dim and self.data.kind != "names":
            raise ValueError(f"model.embed_dim is for character data (data.kind: names), not "
                             f"'{self.data.kind}'; remove it")
        if self.data.kind == "names" and self.model.kind != "mlp":
            raise ValueError(f"names data needs model.kind 'mlp' (with embed_dim), got '{self.model.kind}'")
        return self


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid spec {source}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling and its section)"
        got = e.get("input")
        shown = "" if e["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {where}: {msg}{shown}")
    return "\n".join(lines)


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
        raw = apply_overrides(raw, overrides or [], str(path))
    return spec_from_dict(raw, str(path))


def dump_spec(spec: Spec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
