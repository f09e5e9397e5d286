"""The sequence augment ops (shift1d, scale1d, noise1d): exact on known inputs, drawn per example,
batched on the data's device, and refused on the wrong kind of input."""
import pytest
import torch

from babysit import build_trainer, load_spec
from babysit.data import DataError
from babysit.data.augment import OPS, AugmentedSampler, Pipeline
from babysit.errors import SpecError

Shift, Scale, Noise = (OPS[n].Params for n in ("shift1d", "scale1d", "noise1d"))


def sequences(n=64, c=1, length=40, seed=0):
    return torch.randn(n, c, length, generator=torch.Generator().manual_seed(seed))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def offsets(x, y, max_shift):
    """The shift k of each example with y[..., t] == x[..., t - k] where both are defined."""
    found = []
    for xi, yi in zip(x, y):
        ks = [k for k in range(-max_shift, max_shift + 1)
              if torch.equal(yi[..., max(k, 0):x.shape[-1] + min(k, 0)], xi[..., max(-k, 0):x.shape[-1] - max(k, 0)])]
        found.append(ks[0] if len(ks) == 1 else None)
    return found


def test_shift1d_moves_each_sequence_by_its_own_offset_and_fills_zeros():
    x = sequences(200)
    y = OPS["shift1d"](Shift(name="shift1d", max_shift=3))(x, gen())
    ks = offsets(x, y, 3)
    assert None not in ks and set(ks) == set(range(-3, 4))  # every offset drawn, 200 examples
    for xi, yi, k in zip(x, y, ks):
        moved_in = yi[..., :k] if k > 0 else yi[..., yi.shape[-1] + k:]
        assert torch.count_nonzero(moved_in) == 0


def test_shift1d_circular_is_a_roll_and_edge_repeats_the_end():
    x = sequences(50)
    y = OPS["shift1d"](Shift(name="shift1d", max_shift=5, mode="circular"))(x, gen(1))
    for xi, yi in zip(x, y):
        assert any(torch.equal(yi, xi.roll(k, -1)) for k in range(-5, 6))
    ramp = torch.arange(10.0)
    e = OPS["shift1d"](Shift(name="shift1d", max_shift=2, mode="edge"))(ramp.view(1, 1, 10).repeat(100, 1, 1), gen(2))
    shifted = {d: (ramp + d).clamp(0, 9) for d in range(-2, 3)}  # the end value repeated
    drawn = [next(d for d, s in shifted.items() if torch.equal(row[0], s)) for row in e]
    assert set(drawn) == set(range(-2, 3))


def test_scale1d_amplitude_alone_multiplies_by_a_factor_in_range_and_stretch_alone_keeps_the_centre():
    x = sequences(300) + 3.0  # no zeros, so the factor is x' / x
    y = OPS["scale1d"](Scale(name="scale1d", stretch=0.0, amplitude=0.2))(x, gen())
    a = (y / x)[:, 0]
    assert torch.allclose(a, a[:, :1].expand_as(a), rtol=1e-6, atol=0)  # one factor per sequence
    assert 0.8 - 1e-6 <= a.min() and a.max() <= 1.2 + 1e-6 and a[:, 0].std() > 0.08  # U[0.8, 1.2]: sd 0.115
    odd = sequences(300, length=41)
    s = OPS["scale1d"](Scale(name="scale1d", stretch=0.3))(odd, gen())
    torch.testing.assert_close(s[..., 20], odd[..., 20])  # the centre stays put
    assert not torch.allclose(s, odd)


def test_scale1d_stretch_widens_a_bump_by_its_factor():
    bump = torch.zeros(400, 1, 161)
    bump[..., 60:101] = 1.0  # 41 positions wide around the centre 80
    y = OPS["scale1d"](Scale(name="scale1d", stretch=0.5))(bump, gen())
    t = 0.5 + torch.rand(400, generator=gen())  # the op's first draw: t ~ U[0.5, 1.5]
    width = y.sum(-1).squeeze(1) / 41  # each output position reads the input at u / t
    assert (width - t).abs().max() < 1.5 / 41  # up to one position and a half at the ramps
    assert t.min() < 0.55 and t.max() > 1.45


def test_noise1d_adds_independent_noise_of_its_std():
    x = torch.zeros(500, 1, 40)
    y = OPS["noise1d"](Noise(name="noise1d", std=0.3))(x, gen())
    assert y.std().item() == pytest.approx(0.3, rel=0.02)  # 20,000 draws
    assert abs(torch.corrcoef(torch.stack([y[:, 0, 0], y[:, 0, 1]]))[0, 1].item()) < 0.1


def test_p_applies_an_op_to_a_share_of_the_sequences():
    x = sequences(2000)
    y = OPS["noise1d"](Noise(name="noise1d", std=1.0, p=0.25))(x, gen())
    changed = (y != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.25, abs=0.03)


def test_pipeline_of_sequence_ops_replays_under_its_state():
    specs = [Shift(name="shift1d"), Scale(name="scale1d", amplitude=0.1), Noise(name="noise1d")]
    x = sequences(32)
    a = Pipeline(specs, x, seed=5)
    state = a.state_dict()
    first = a(x)
    a.load_state_dict(state)
    torch.testing.assert_close(a(x), first, rtol=0, atol=0)
    assert not torch.equal(Pipeline(specs, x, seed=6)(x), first)


def test_ops_refuse_the_other_kind_of_input():
    with pytest.raises(DataError, match=r"data.augment needs sequence inputs \(N, C, L\).*\(10, 1, 8, 8\)"):
        Pipeline([Shift(name="shift1d")], torch.rand(10, 1, 8, 8), seed=0)
    with pytest.raises(DataError, match=r"data.augment needs image inputs \(N, C, H, W\).*\(10, 1, 40\)"):
        Pipeline([OPS["crop"].Params(name="crop")], torch.rand(10, 1, 40), seed=0)
    with pytest.raises(DataError, match="max_shift 50 exceeds the sequence length 40"):
        Pipeline([Shift(name="shift1d", max_shift=50, mode="circular")], torch.rand(10, 1, 40), seed=0)
    with pytest.raises(SpecError, match=r"data.augment \['crop'\] are not for sequences.*valid ops: shift1d, scale1d, noise1d"):
        load_spec("mnist1d-cnn", ["data.augment=[{name: crop}]"])
    with pytest.raises(SpecError, match=r"data.augment \['noise1d'\] are not for images"):
        load_spec("digits-cnn", ["data.augment=[{name: noise1d}]"])


def test_mnist1d_training_batches_are_augmented(tmp_path):
    spec = load_spec("mnist1d-cnn", ["train.steps=10", "train.eval_every=10", "watch.enabled=false",
                                     "data.num_samples=200", "data.augment=[{name: shift1d}, {name: noise1d}]"])
    trainer = build_trainer(spec, tmp_path / "run", progress=False, doctor=False)
    assert isinstance(trainer.sampler, AugmentedSampler)
    state = trainer.sampler.state_dict()
    x_aug, y = trainer.sampler.next()
    trainer.sampler.load_state_dict(state)
    x_raw, y_raw = trainer.sampler.sampler.next()
    assert torch.equal(y, y_raw) and x_aug.shape == x_raw.shape and not torch.equal(x_aug, x_raw)
