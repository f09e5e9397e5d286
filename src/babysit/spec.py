"""The run spec: YAML validated into typed objects.

Every error names the field path and the file, because a user fixing a spec needs both.
Defaults follow LECTURES.md (Adam's betas, BatchNorm's eps, the MM3 batch of 32).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union, get_args

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


class _Aug(_Strict):
    p: float = Field(0.5, ge=0, le=1, description="probability per example")


class HFlipAug(_Aug):
    name: Literal["hflip"]


class CropAug(_Aug):
    name: Literal["crop"]
    padding: int = Field(4, ge=1)
    p: float = Field(1.0, ge=0, le=1)


class ResizedCropAug(_Aug):
    name: Literal["resized_crop"]
    scale: tuple[float, float] = (0.08, 1.0)  # share of the image's area (Inception / torchvision)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio of the crop
    p: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self):
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi <= 1, got {list(self.scale)}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must be (lo, hi) with 0 < lo <= hi, got {list(self.ratio)}")
        return self


class JitterAug(_Aug):
    name: Literal["jitter"]
    brightness: float = Field(0.2, ge=0, lt=1, description="factor drawn from [1-b, 1+b]")
    contrast: float = Field(0.2, ge=0, lt=1, description="factor drawn from [1-c, 1+c]")
    p: float = Field(1.0, ge=0, le=1)


class PCAColorAug(_Aug):
    name: Literal["pca_color"]
    std: float = Field(0.1, gt=0, description="AlexNet: alpha ~ N(0, 0.1)")
    p: float = Field(1.0, ge=0, le=1)


AugmentOp = Annotated[Union[HFlipAug, CropAug, ResizedCropAug, JitterAug, PCAColorAug],
                      Field(discriminator="name")]


class DataSpec(_Strict):
    kind: Literal["names", "digits", "arrays", "images"] = "names"
    path: Optional[str] = None  # names file, .npz/.pt arrays, or an image folder
    context: int = Field(3, ge=1, description="names: characters of context")
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 42  # LECTURES.md §5: Python random.seed(42)
    image_size: Optional[tuple[int, int]] = None  # images: resize to (H, W)
    grayscale: bool = False
    num_classes: Optional[int] = Field(None, ge=2, description="arrays: default 1 + the largest train label")
    # Fit on the train split, kept in the model (babysit/nn/preprocess.py; LECTURES.md §1).
    preprocess: Literal["none", "center", "standardize", "mean-image", "channel-mean", "pca",
                        "pca-whiten", "zca"] = "none"
    pca_components: Optional[int] = Field(None, ge=1, description="pca / pca-whiten: components kept (k)")
    whiten_eps: float = Field(1e-5, gt=0, description="pca-whiten / zca: added to each eigenvalue")
    augment: list[AugmentOp] = Field(default_factory=list, description="training batches only")
    classes: Optional[list[int]] = Field(None, description="keep only these labels, relabelled 0..k-1 in this order")

    @field_validator("classes")
    @classmethod
    def _classes(cls, v):
        if v is not None and (len(v) < 2 or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError("must list at least 2 distinct labels >= 0, e.g. [5, 6, 7, 8, 9]")
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.preprocess in ("pca", "pca-whiten") and self.pca_components is None:
            raise ValueError(f"data.preprocess '{self.preprocess}' needs data.pca_components: k "
                             "(the number of components kept)")
        if self.pca_components is not None and self.preprocess not in ("pca", "pca-whiten"):
            raise ValueError(f"data.pca_components is only used with data.preprocess pca or "
                             f"pca-whiten, got preprocess '{self.preprocess}'; remove it")
        if self.kind == "names" and self.preprocess not in ("none", "center", "standardize"):
            raise ValueError(f"data.preprocess '{self.preprocess}' needs real-valued inputs; names "
                             "data are character indices (use none)")
        if self.kind == "names" and self.augment:
            raise ValueError("data.augment needs image inputs (C, H, W); names data are character indices")
        if self.classes is not None and self.kind == "names":
            raise ValueError("classes is for labelled data (digits, arrays, images), not names "
                             "(its labels are the next character)")
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
    lsuv: bool = Field(False, description="after init: LSUV on a training batch (babysit/nn/lsuv.py)")


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
    # hidden fully connected layers: linear, Maxout or DropConnect (babysit/nn/blocks.py, LECTURES.md §1)
    layer: Literal["linear", "maxout", "dropconnect"] = "linear"
    maxout_pieces: int = Field(2, ge=2, description="layer: maxout; L6's Maxout has 2")
    dropconnect_p: float = Field(0.5, ge=0, lt=1, description="layer: dropconnect; weight drop rate")
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


class RegularizerSpec(_Strict):
    """A penalty added to the loss (babysit.train.penalties); optim.weight_decay acts in the
    optimizer instead and never shows in the loss."""

    name: str = Field("l2", description="a name in babysit.train.penalties.REGULARIZERS: l2, l1")
    strength: float = Field(0.0, ge=0, description="loss += strength * penalty(model)")

    @field_validator("name")
    @classmethod
    def _known(cls, v):
        from babysit.train.penalties import REGULARIZERS  # lazy: train imports this module

        if v not in REGULARIZERS:
            raise ValueError(f"unknown regularizer {v!r}; valid: {', '.join(REGULARIZERS)}")
        return v


class EMASpec(_Strict):
    """Polyak averaging (LECTURES.md §1, L7): an exponential average of the weights, evaluated
    with BatchNorm statistics recomputed on the train split."""

    # 0.999: an average over about the last 1,000 steps (1 / (1 - decay)), torch's usual EMA setting
    decay: float = Field(0.999, gt=0, lt=1, description="weight of the old average per step")


class TrainSpec(_Strict):
    steps: Optional[int] = Field(None, ge=1)
    epochs: Optional[int] = Field(None, ge=1)
    batch_size: Union[int, Literal["full"]] = 32
    eval_every: int = Field(1000, ge=1)
    log_every: int = Field(100, ge=1)
    checkpoint_every: int = Field(5000, ge=1)
    grad_clip: Optional[float] = Field(None, gt=0)
    early_stopping: Optional[EarlyStopSpec] = None
    regularizer: Optional[RegularizerSpec] = None
    preflight: bool = Field(False, description="run the babysitting checklist first; a failed check stops the run")
    device: str = "auto"
    snapshots: bool = Field(False, description="snapshot ensemble: save the weights at the end of each "
                                               "cosine_restarts cycle and evaluate their average")
    ema: Optional[EMASpec] = None

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

    def batch_for(self, n: int) -> int:
        """The batch size over n training examples ("full": all of them)."""
        return n if self.batch_size == "full" else self.batch_size


class WatchSpec(_Strict):
    """Per-layer statistics while training (LECTURES.md §3); sampled, so the cost stays small."""

    enabled: bool = True
    every: int = Field(200, ge=1, description="sample one step in this many (and step 1); cost: benchmarks/watch_overhead.py")
    bins: int = Field(40, ge=4, le=512, description="histogram bins")
    # Off by default: measured 18% slower on a CPU (benchmarks/watch_overhead.py --grad-norm-every-step).
    grad_norm_every_step: bool = Field(False, description="global gradient norm at every step")


class FinetuneSpec(_Strict):
    """`babysit finetune`: the head alone first, then everything with a lower lr for the body (L7)."""

    # 200: an uncalibrated default (L7 gives no number). On digits 0-4 -> 5-9 a 10-step head phase
    # with body_lr_factor 1 transferred best (tests/train/test_finetune.py); head_steps = train.steps
    # is a head-only fine-tune, L7's advice for very small data.
    head_steps: int = Field(200, ge=0, description="steps training the new head with the body frozen")
    body_lr_factor: float = Field(0.1, gt=0, le=1, description="body lr = optim.lr x this after the head phase")


class Spec(_Strict):
    name: str = "run"
    seed: int = 0
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    train: TrainSpec = TrainSpec(steps=1000)
    watch: WatchSpec = WatchSpec()
    finetune: FinetuneSpec = FinetuneSpec()
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
        if self.train.snapshots and self.schedule.name != "cosine_restarts":
            raise ValueError(f"train.snapshots needs schedule.name: cosine_restarts (a snapshot at the end "
                             f"of each cycle), got '{self.schedule.name}'; set schedule.cycle_steps too")
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
