"""The spec's sections: what a run is made of (data, model, optimizer, schedule, training,
watching, fine-tuning). Defaults follow LECTURES.md (Adam's betas, BatchNorm's eps, the MM3
batch of 32). Each section checks what it can alone; checks across sections are in Spec."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from babysit import factories
from babysit.activations import CHOICES as ACTIVATION_CHOICES
from babysit.data.augment import OPS
from babysit.errors import SpecError
from babysit.penalties import REGULARIZERS
from babysit.schema import Strict

# data.augment: each op's parameters come with the op (babysit/data/augment.py)
AugmentOp = Annotated[Union[tuple(op.Params for _, op in OPS.items())], Field(discriminator="name")]
Activation = Literal[ACTIVATION_CHOICES]
# What each built-in data kind's examples are, for the augment ops' `inputs` and the models that
# read a shape (arrays: either, checked when the data load)
KIND_INPUTS = {"digits": "images", "images": "images", "mnist1d": "sequences"}
MODEL_INPUTS = {"cnn": "images", "cnn1d": "sequences", "gru": "sequences"}


class LoaderSpec(Strict):
    """How batches of a torch Dataset (data.kind python) are read: torch's DataLoader settings."""

    workers: int = Field(0, ge=0, description="DataLoader worker processes (0: read in the training process)")
    pin_memory: bool = Field(False, description="page-locked batches: faster copies to a GPU")


def check_factory(kind: str, factory: Optional[str], args: dict, section: str) -> None:
    """kind python needs a factory; a factory or args mean nothing for babysit's own kinds."""
    if kind == "python" and not factory:
        raise ValueError(f"{section}.kind python needs {section}.factory: 'module:function' or "
                         "'file.py:function' (a file beside the spec)")
    if kind != "python" and (factory or args):
        raise ValueError(f"{section}.factory and {section}.args are for {section}.kind python, not '{kind}'")
    if factory:
        try:
            factories.split_ref(factory, f"{section}.factory")
        except SpecError as exc:
            raise ValueError(str(exc)) from None


def stock_fields_set(spec: Strict, keep: set[str]) -> list[str]:
    """The fields of `spec` away from their defaults, besides `keep`: settings of babysit's own
    builders that a user's code (kind python) would silently ignore."""
    fields = type(spec).model_fields
    return [k for k in fields if k not in keep
            and getattr(spec, k) != fields[k].get_default(call_default_factory=True)]


# Fractional max pooling's usual ratio: each side shrinks by sqrt(2) per pooling, so two poolings
# halve it (Graham 2014, "Fractional Max-Pooling", the sqrt(2) nets).
FRACTIONAL_RATIO = 2 ** -0.5


class DataSpec(Strict):
    kind: Literal["names", "digits", "arrays", "images", "mnist1d", "python"] = "names"
    # kind python (babysit/data/python.py): factory(**args) returns the splits, as tensors or Datasets
    factory: Optional[str] = None
    args: dict[str, Any] = Field(default_factory=dict, description="python: keyword arguments of the factory")
    loader: LoaderSpec = LoaderSpec()
    path: Optional[str] = None  # names file, .npz/.pt/.csv arrays, or an image folder; relative to the spec file
    target: Optional[str] = Field(None, description="arrays from a .csv: the label column")
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
    # mnist1d (babysit/data/mnist1d.py): the package's generator arguments; None = the paper's
    num_samples: Optional[int] = Field(None, ge=10, description="mnist1d: sequences generated (paper 5000), "
                                                                "80% train")
    seed: Optional[int] = Field(None, ge=0, description="mnist1d: the generator's seed (paper 42)")
    shuffle_seq: bool = Field(False, description="mnist1d: one fixed permutation of the 40 positions "
                                                 "(the paper's shuffled variant)")

    @field_validator("classes")
    @classmethod
    def _classes(cls, v):
        if v is not None and (len(v) < 2 or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError("must list at least 2 distinct labels >= 0, e.g. [5, 6, 7, 8, 9]")
        return v

    @model_validator(mode="after")
    def _check(self):
        check_factory(self.kind, self.factory, self.args, "data")
        if self.kind == "python":
            # the factory returns its own splits and classes, from its own files
            ignored = stock_fields_set(self, {"kind", "factory", "args", "loader", "preprocess", "pca_components",
                                        "whiten_eps", "augment", "classes"})
            if ignored:
                raise ValueError(f"data.{', data.'.join(ignored)} are for babysit's own data kinds; "
                                 "data.kind python returns its own splits (pass settings in data.args)")
        elif self.loader != LoaderSpec():
            raise ValueError(f"data.loader is for torch Datasets (data.kind python), not '{self.kind}', "
                             "whose splits are tensors in memory")
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
        mnist1d_only = [k for k in ("num_samples", "seed") if getattr(self, k) is not None]
        mnist1d_only += ["shuffle_seq"] if self.shuffle_seq else []
        if self.kind != "mnist1d" and mnist1d_only:
            raise ValueError(f"data.{', data.'.join(mnist1d_only)} only apply to data.kind mnist1d, "
                             f"not '{self.kind}'; remove them")
        holds = KIND_INPUTS.get(self.kind)
        wrong = [a.name for a in self.augment if holds and OPS[a.name].inputs != holds]
        if wrong:
            valid = [n for n, op in OPS.items() if op.inputs == holds]
            raise ValueError(f"data.augment {wrong} are not for {holds}, which data.kind '{self.kind}' "
                             f"holds; valid ops: {', '.join(valid)}")
        if self.kind in ("arrays", "images") and not self.path:
            raise ValueError(f"data.kind '{self.kind}' needs data.path (a file or folder of yours)")
        csv = self.kind == "arrays" and str(self.path).lower().endswith(".csv")
        if csv and not self.target:
            raise ValueError(f"data.path {self.path} is a CSV table: name its label column with data.target")
        if self.target and not csv:
            raise ValueError(f"data.target ({self.target!r}) names the label column of a .csv data.path "
                             f"(data.kind arrays), got kind {self.kind!r} and path {self.path!r}")
        return self


class LayerInit(Strict):
    """How one group of layers starts. 'auto' = kaiming with the gain of the layer's activation."""

    weight: Literal["auto", "default", "zeros", "normal", "xavier", "kaiming", "orthogonal"] = "auto"
    std: float = Field(1.0, gt=0, description="std for weight: normal")
    scale: float = Field(1.0, ge=0, description="multiplier applied after init (MM3: output x 0.01)")
    bias: Literal["zeros", "normal", "default"] = "zeros"
    bias_std: float = Field(0.01, gt=0)


class InitSpec(Strict):
    hidden: LayerInit = LayerInit()
    output: LayerInit = LayerInit()
    lsuv: bool = Field(False, description="after init: LSUV on a training batch (babysit/nn/lsuv.py)")


class ModelSpec(Strict):
    kind: Literal["mlp", "cnn", "cnn1d", "gru", "python"] = "mlp"
    # kind python (babysit/models.py): factory(**args) returns the nn.Module; `init` still applies
    factory: Optional[str] = None
    args: dict[str, Any] = Field(default_factory=dict, description="python: keyword arguments of the factory")
    embed_dim: Optional[int] = Field(None, ge=1, description="mlp on names: character embedding size")
    hidden: list[int] = Field(default_factory=lambda: [200])
    activation: Activation = "tanh"
    batchnorm: bool = False
    bn_momentum: float = Field(0.1, gt=0, le=1)  # PyTorch's default; MM3 uses 0.001 at batch 32
    output_batchnorm: bool = False
    # several processes (babysit train --nproc N, torchrun): BatchNorm's batch statistics over
    # the whole global batch (torch's SyncBatchNorm, CUDA only) instead of each rank's share
    sync_batchnorm: bool = False
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
    pool: Literal["max", "avg", "fractional"] = "max"  # fractional: Graham's fractional max pooling (L7)
    pool_ratio: Optional[float] = Field(None, gt=0, lt=1, description="pool: fractional; each side shrinks to this "
                                        f"fraction per pooling (default {FRACTIONAL_RATIO:.4f} = 1/sqrt(2), Graham's)")
    # cnn1d (sequences (C, L)): channels, kernel_size as cnn; a stride-2 conv halves the length
    # itself, so MNIST-1D's paper CNN (three stride-2 convs) uses pool1d: none
    stride: int = Field(1, ge=1, description="cnn1d: conv stride")
    pool1d: Literal["max", "avg", "none"] = Field("max", description="cnn1d: pooling by 2 after each conv")
    # gru: a GRU reads the sequence, every position's output is flattened into the hidden layers
    gru_hidden: int = Field(6, ge=1, description="gru: hidden units per direction (MNIST-1D paper: 6)")
    gru_layers: int = Field(1, ge=1, description="gru: stacked GRU layers (dropout between them)")
    bidirectional: bool = Field(True, description="gru: read the sequence both ways (paper: yes)")

    @model_validator(mode="after")
    def _check(self):
        check_factory(self.kind, self.factory, self.args, "model")
        if self.kind == "python":
            ignored = stock_fields_set(self, {"kind", "factory", "args", "init", "sync_batchnorm"})
            if ignored:
                raise ValueError(f"model.{', model.'.join(ignored)} are for babysit's own models (mlp, cnn); "
                                 "a model.kind python network is built by its factory (pass settings in model.args)")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {self.hidden}")
        if self.kind in ("cnn", "cnn1d") and (not self.channels or any(c < 1 for c in self.channels)):
            raise ValueError(f"{self.kind} needs channels >= 1, got {self.channels}")
        if self.pool_ratio is not None and self.pool != "fractional":
            raise ValueError(f"model.pool_ratio is only used with model.pool: fractional, got pool '{self.pool}'; "
                             "remove it or set pool: fractional")
        return self

    @property
    def fractional_ratio(self) -> float:
        return FRACTIONAL_RATIO if self.pool_ratio is None else self.pool_ratio


class OptimSpec(Strict):
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
        if self.name == "lbfgs" and self.weight_decay:
            raise ValueError(f"lbfgs takes no weight_decay in torch (got {self.weight_decay}); add an L2 "
                             "term to the loss instead (train.regularizer: {name: l2, strength: ...})")
        return self


class ScheduleSpec(Strict):
    name: Literal["constant", "step", "exponential", "inverse_time", "cosine", "cosine_restarts",
                  "plateau"] = "constant"
    # step: where lr *= factor; fractions of the run (0 < m < 1: 0.5 is halfway, whatever train.steps
    # is) or whole step numbers counted after the warm-up; one spec uses one kind
    milestones: list[Union[int, float]] = Field(default_factory=list, description="step: where lr *= factor")
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
        fractions = [m for m in self.milestones if m < 1]
        if fractions and (len(fractions) < len(self.milestones)):
            raise ValueError(f"milestones mix fractions of the run (0 < m < 1) and step numbers, got "
                             f"{self.milestones}; use one kind, e.g. [0.5, 0.75]")
        if any(m >= 1 and m != int(m) for m in self.milestones):
            raise ValueError(f"milestones are fractions (0 < m < 1) or whole step numbers, got {self.milestones}")
        if self.name == "step" and not self.milestones:
            raise ValueError("schedule 'step' needs milestones, e.g. [100000]")
        return self


class EarlyStopSpec(Strict):
    patience: int = Field(5, ge=1, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0)


class RegularizerSpec(Strict):
    """A penalty added to the loss (babysit.penalties); optim.weight_decay acts in the
    optimizer instead and never shows in the loss."""

    name: str = Field("l2", description="a name in babysit.penalties.REGULARIZERS: l2, l1")
    strength: float = Field(0.0, ge=0, description="loss += strength * penalty(model)")

    @field_validator("name")
    @classmethod
    def _known(cls, v):
        if v not in REGULARIZERS:
            raise ValueError(f"unknown regularizer {v!r}; valid: {', '.join(REGULARIZERS)}")
        return v


class EMASpec(Strict):
    """Polyak averaging (LECTURES.md §1, L7): an exponential average of the weights, evaluated
    with BatchNorm statistics recomputed on the train split."""

    # 0.999: an average over about the last 1,000 steps (1 / (1 - decay)), torch's usual EMA setting
    decay: float = Field(0.999, gt=0, lt=1, description="weight of the old average per step")


class TrainSpec(Strict):
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
    report: bool = Field(True, description="write RUN/report.html when the run ends (babysit report)")
    # Cost: README "Speed on the GPU". Off: CUDA picks its fastest kernels, some not bit-reproducible.
    deterministic: bool = Field(False, description="deterministic algorithms (CUDA too): kill-and-resume is exact")
    compile: Literal["auto", "graph", "off"] = Field(
        "auto", description="graph: capture the training step once as a CUDA graph and replay it; "
                            "auto: graph where the device is CUDA and the setup allows it")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast the forward and loss to bf16 or fp16 (fp16 with a gradient scaler)")

    @field_validator("compile", mode="before")
    @classmethod
    def _off(cls, v):
        return "off" if v is False else v  # YAML reads a bare `off` as false

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


class WatchSpec(Strict):
    """Per-layer statistics while training (LECTURES.md §3); sampled, so the cost stays small."""

    enabled: bool = True
    every: int = Field(200, ge=1, description="sample one step in this many (and step 1); cost: benchmarks/watch_overhead.py")
    bins: int = Field(40, ge=4, le=512, description="histogram bins")
    # Off by default: measured 18% slower on a CPU (benchmarks/watch_overhead.py --grad-norm-every-step).
    grad_norm_every_step: bool = Field(False, description="global gradient norm at every step")


class FinetuneSpec(Strict):
    """`babysit finetune`: the head alone first, then everything with a lower lr for the body (L7)."""

    # 200: an uncalibrated default (L7 gives no number). On digits 0-4 -> 5-9 a 10-step head phase
    # with body_lr_factor 1 transferred best (tests/train/test_finetune.py); head_steps = train.steps
    # is a head-only fine-tune, L7's advice for very small data.
    head_steps: int = Field(200, ge=0, description="steps training the new head with the body frozen")
    body_lr_factor: float = Field(0.1, gt=0, le=1, description="body lr = optim.lr x this after the head phase")
    # The re-initialized layers: babysit's models name theirs (out, out_bn); for a model.kind
    # python network, this module of it, by default its last nn.Linear.
    head: Optional[str] = Field(None, description="python models: the head module's name (default: the last Linear)")
