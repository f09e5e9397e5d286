"""Batched augmentation (LECTURES.md §1, regularization): each op's shape and statistics,
independence across a batch, reproducibility under a seed, and training-only use."""
import pytest
import torch

from babysit import build_trainer, load_spec
from babysit.data import DataError
from babysit.data.augment import OPS, AugmentedSampler, Pipeline
from babysit.train.evaluate import evaluate

# each op's parameters come with the op
HFlipAug, CropAug, ResizedCropAug, JitterAug, PCAColorAug = (
    OPS[n].Params for n in ("hflip", "crop", "resized_crop", "jitter", "pca_color"))


def images(n=64, c=1, h=8, w=8, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_hflip_twice_is_identity_and_p_picks_examples():
    x = images()
    flip = OPS["hflip"](HFlipAug(name="hflip", p=1.0))
    torch.testing.assert_close(flip(x, gen()), x.flip(-1), rtol=0, atol=0)
    torch.testing.assert_close(flip(flip(x, gen(0)), gen(1)), x, rtol=0, atol=0)
    half = OPS["hflip"](HFlipAug(name="hflip", p=0.5))(images(2000), gen())
    flipped = (half == images(2000).flip(-1)).flatten(1).all(1)
    kept = (half == images(2000)).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert 0.45 < float(flipped.float().mean()) < 0.55  # p = 0.5, binomial sd ~0.011


def _shift(x, dy, dx):
    """x moved down by dy and right by dx, zeros coming in."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_crop_with_padding_keeps_size_and_shifts_content():
    x, p = images(200, c=3), 2
    out = OPS["crop"](CropAug(name="crop", padding=p))(x, gen())
    assert out.shape == x.shape
    shifts = []
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                 if torch.equal(out[i], _shift(x[i], dy, dx))]
        assert len(found) == 1, f"example {i} is no shift of its input"
        shifts.append(found[0])
    assert len(set(shifts)) == (2 * p + 1) ** 2  # every offset drawn: per example, not per batch


def test_resized_crop_keeps_size_is_identity_at_full_scale_and_zooms_in():
    x = images(16, c=2)
    full = OPS["resized_crop"](ResizedCropAug(name="resized_crop", scale=(1.0, 1.0), ratio=(1.0, 1.0)))
    torch.testing.assert_close(full(x, gen()), x, atol=1e-5, rtol=0)
    ramp = torch.linspace(0, 1, 16).expand(8, 1, 16, 16).contiguous()  # brightness grows left to right
    zoom = OPS["resized_crop"](ResizedCropAug(name="resized_crop", scale=(0.25, 0.25), ratio=(1.0, 1.0)))
    out = zoom(ramp, gen())
    assert out.shape == ramp.shape
    spans = out[:, 0, 0, -1] - out[:, 0, 0, 0]
    # a box of half the width, stretched over the image: the ramp spans half its range
    torch.testing.assert_close(spans, torch.full((8,), 0.5), atol=1e-4, rtol=0)
    assert out[:, 0, 0, 0].unique().numel() == 8  # a different box for each example


def test_jitter_changes_brightness_and_contrast_within_range():
    x = images(500) + 0.5
    bright = OPS["jitter"](JitterAug(name="jitter", brightness=0.3, contrast=0.0))(x, gen())
    factor = (bright / x).flatten(1)
    torch.testing.assert_close(factor.min(1).values, factor.max(1).values)  # one factor per image
    assert 0.7 - 1e-6 <= float(factor.min()) and float(factor.max()) <= 1.3 + 1e-6
    assert float(factor[:, 0].std()) > 0.1  # uniform on [0.7, 1.3]: sd 0.17
    contrast = OPS["jitter"](JitterAug(name="jitter", brightness=0.0, contrast=0.4))(x, gen())
    torch.testing.assert_close(contrast.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))  # mean kept
    ratio = contrast.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert 0.6 - 1e-5 <= float(ratio.min()) < 0.7 and 1.3 < float(ratio.max()) <= 1.4 + 1e-5


@pytest.mark.parametrize("channels", [3, 1])
def test_pca_colour_jitter_adds_alexnets_eigen_shift(channels):
    g = gen(3)
    base = torch.rand(400, 1, 4, 4, generator=g)
    colour = torch.randn(channels, channels, generator=g)
    x = torch.einsum("nkhw,ck->nchw", base.expand(-1, channels, -1, -1), colour) if channels > 1 else base
    op = OPS["pca_color"](PCAColorAug(name="pca_color", std=0.1))
    op.fit(x)
    shift = op(x, gen()) - x
    per_image = shift[:, :, :1, :1]
    torch.testing.assert_close(shift, per_image.expand_as(shift), atol=1e-6, rtol=0)  # one colour per image
    # along eigenvector i the shift is alpha_i * lambda_i, alpha_i ~ N(0, 0.1)
    coords = per_image.flatten(1) @ op.vecs
    top = int(op.vals.argmax())
    sd = float(coords[:, top].std() / op.vals[top])
    assert 0.085 < sd < 0.115  # 400 draws: sd of the sd estimate ~0.0035
    if channels == 1:  # intensity jitter: lambda is the pixel variance
        torch.testing.assert_close(op.vals, x.var().reshape(1), rtol=1e-3, atol=0)


def test_pipeline_deterministic_under_seed_and_differs_by_seed():
    specs = [CropAug(name="crop", padding=1), JitterAug(name="jitter"), PCAColorAug(name="pca_color"),
             ResizedCropAug(name="resized_crop", scale=(0.5, 1.0))]
    x = images(32, c=3)
    a, b, c = Pipeline(specs, x, seed=5), Pipeline(specs, x, seed=5), Pipeline(specs, x, seed=6)
    out = a(x)
    torch.testing.assert_close(out, b(x), rtol=0, atol=0)
    assert not torch.equal(out, c(x))
    assert not torch.equal(a(x), out)  # the stream moves on: a new draw each batch
    state = a.state_dict()
    first = a(x)
    a.load_state_dict(state)
    torch.testing.assert_close(a(x), first, rtol=0, atol=0)  # the checkpointed state replays it


def test_augment_needs_float_images():
    with pytest.raises(DataError, match=r"data.augment needs image inputs \(N, C, H, W\).*\(10, 3\)"):
        Pipeline([CropAug(name="crop")], torch.rand(10, 3), seed=0)
    with pytest.raises(Exception, match="needs image inputs"):
        load_spec("makemore-bn", ["data.augment=[{name: crop}]"])


def test_training_batches_are_augmented_evaluation_is_not(tmp_path):
    spec = load_spec("digits-cnn", ["train.steps=20", "train.eval_every=20", "train.log_every=10",
                                    "train.checkpoint_every=20", "watch.enabled=false",
                                    "data.augment=[{name: crop, padding: 1}, {name: jitter}]"])
    trainer = build_trainer(spec, tmp_path / "run", progress=False)
    assert isinstance(trainer.sampler, AugmentedSampler)
    state = trainer.sampler.state_dict()
    x_aug, y = trainer.sampler.next()
    trainer.sampler.load_state_dict(state)
    x_raw, y_raw = trainer.sampler.sampler.next()
    assert torch.equal(y, y_raw) and not torch.equal(x_aug, x_raw)
    trainer.sampler.load_state_dict(state)
    summary = trainer.fit()
    plain = evaluate(trainer.model, trainer.data.val)  # the raw val split
    assert summary["val_loss"] == pytest.approx(plain["loss"], abs=1e-6)
    torch.testing.assert_close(evaluate(trainer.model, trainer.data.val)["loss"], plain["loss"])  # no draw in eval


def test_resume_with_augmentation_is_exact(tmp_path):
    over = ["train.eval_every=10", "train.log_every=10", "train.checkpoint_every=10", "watch.enabled=false",
            "data.augment=[{name: crop, padding: 1}, {name: jitter}]",
            "train.deterministic=true"]  # CUDA's default convolution kernels are not bit-reproducible
    straight = build_trainer(load_spec("digits-cnn", ["train.steps=30", *over]), tmp_path / "a", progress=False)
    straight.fit()
    build_trainer(load_spec("digits-cnn", ["train.steps=10", *over]), tmp_path / "b", progress=False).fit()
    resumed = build_trainer(load_spec("digits-cnn", ["train.steps=30", *over]), tmp_path / "b", progress=False,
                      resume=True)
    resumed.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_no_digits_preset_flips():
    """A mirrored digit is not the same digit: hflip is not label-preserving for digits."""
    from babysit.spec import PRESETS_DIR

    digits = [load_spec(p) for p in sorted(PRESETS_DIR.glob("*.yaml")) if load_spec(p).data.kind == "digits"]
    assert any(s.data.augment for s in digits)  # the augmented preset is among them
    for s in digits:
        assert "hflip" not in [a.name for a in s.data.augment], s.name
