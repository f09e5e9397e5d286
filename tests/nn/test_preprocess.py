"""Preprocessing (LECTURES.md §1: fit on the training set once, apply the same to val/test)."""
import dataclasses

import pytest
import torch

import babysit
from babysit.data import build_data
from babysit.models import build_model
from babysit.nn.preprocess import FITS, Preprocess
from babysit.runs import load_run
from babysit.spec import load_spec
from babysit.session import build_trainer

WHITE_TOL = 1e-3  # whitened covariance vs identity; the eps of 1e-5 alone moves it by ~1e-5


def correlated(n=4000, d=6, seed=0):
    """Gaussian data with very different variances and strong correlations, full rank."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) * torch.logspace(0, 1, d)
    return torch.randn(n, d, generator=g) @ mix + 3.0


def cov(z):
    z = z.reshape(len(z), -1).double()
    return torch.cov(z.T)


@pytest.mark.parametrize("kind", ["pca-whiten", "zca"])
def test_whitened_train_data_has_identity_covariance(kind):
    x = correlated()
    assert (cov(x) - torch.eye(6, dtype=torch.float64)).abs().max() > 1.0  # far from white before
    prep = Preprocess.fit(x, kind, components=6 if kind == "pca-whiten" else None)
    z = prep(x)
    assert z.shape == (4000, 6)
    torch.testing.assert_close(cov(z), torch.eye(6, dtype=torch.float64), atol=WHITE_TOL, rtol=0)
    torch.testing.assert_close(z.mean(0), torch.zeros(6), atol=1e-4, rtol=0)


def test_pca_whiten_keeps_k_components_white():
    x = correlated()
    z = Preprocess.fit(x, "pca-whiten", components=3)(x)
    assert z.shape == (4000, 3)
    torch.testing.assert_close(cov(z), torch.eye(3, dtype=torch.float64), atol=WHITE_TOL, rtol=0)


def test_pca_keeps_the_top_variance_directions():
    x = correlated()
    z = Preprocess.fit(x, "pca", components=2)(x)
    top = torch.linalg.eigvalsh(cov(x)).flip(0)[:2]
    c = cov(z)
    torch.testing.assert_close(c.diagonal(), top, rtol=1e-4, atol=0)  # variances = top eigenvalues
    assert c[0, 1].abs() < 1e-3 * top[1]  # decorrelated


def test_zca_is_the_whitening_closest_to_the_input():
    """ZCA = PCA whitening rotated back: of all whitening maps (W with W^T C W = I, i.e. any
    rotation of a whitened output) it keeps the output closest to the centred input."""
    x = correlated()
    centred = x - x.mean(0)
    zca = Preprocess.fit(x, "zca")
    pcaw = Preprocess.fit(x, "pca-whiten", components=6)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    dist = lambda z: float((z - centred).pow(2).sum(1).mean())  # noqa: E731
    d_zca = dist(zca(x))
    assert d_zca < dist(pcaw(x))
    assert d_zca < dist(zca(x) @ q)
    torch.testing.assert_close(zca.proj, zca.proj.T, atol=1e-4, rtol=0)  # a symmetric map
    # each output feature follows its own input feature
    for j in range(6):
        r = torch.corrcoef(torch.stack([zca(x)[:, j], centred[:, j]]))[0, 1]
        assert r > 0.1


def test_zca_keeps_image_shape_and_whitens_images():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 2, 3, 3, generator=g).cumsum(-1)  # neighbouring pixels correlated
    z = Preprocess.fit(x, "zca")(x)
    assert z.shape == x.shape
    torch.testing.assert_close(cov(z), torch.eye(18, dtype=torch.float64), atol=5 * WHITE_TOL, rtol=0)


def test_zca_leaves_constant_features_at_exactly_zero():
    """Digits have blank border pixels; a plain U diag U^T gives them ~1e-12 of roundoff, which
    the data check would read as features a trillion times smaller than the rest."""
    x = build_data(load_spec("digits-mlp").data).train.x
    flat = x.reshape(len(x), -1)
    const = flat.std(0) == 0
    assert int(const.sum()) == 3
    z = Preprocess.fit(x, "zca")(x).reshape(len(x), -1)
    assert torch.all(z[:, const] == 0)
    live = z[:, ~const].std(0)
    assert float(live.min()) > 0.1 and float(live.max()) < 1.1


def test_mean_image_and_channel_mean():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(500, 3, 4, 4, generator=g) + torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    x[:, :, 0, 0] += 5.0  # one pixel much brighter: the mean image sees it, the channel mean spreads it
    img = Preprocess.fit(x, "mean-image")
    assert img.mean.shape == (3, 4, 4)
    torch.testing.assert_close(img(x).mean(0), torch.zeros(3, 4, 4), atol=1e-5, rtol=0)
    ch = Preprocess.fit(x, "channel-mean")
    assert ch.mean.shape == (3, 1, 1)  # "3 numbers" (LECTURES.md §1)
    torch.testing.assert_close(ch(x).mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    assert float(ch(x).mean(0)[0, 0, 0]) > 4.0  # per channel only: the bright pixel stays bright
    for c in range(3):  # centring only, no scaling
        torch.testing.assert_close(ch(x)[:, c].std(), x[:, c].std())


def test_standardize_unit_std_and_constant_features_unscaled():
    x = torch.randn(400, 5) * torch.tensor([1.0, 10.0, 0.1, 3.0, 1.0])
    x[:, 4] = 7.0  # constant feature
    z = Preprocess.fit(x, "standardize")(x)
    torch.testing.assert_close(z[:, :4].std(0), torch.ones(4), atol=1e-4, rtol=0)
    assert torch.all(z[:, 4] == 0)


def test_errors_name_the_key_value_and_choices():
    with pytest.raises(ValueError, match=r"data.pca_components must lie in 1\.\.6.*'pca'.*got 9"):
        Preprocess.fit(correlated(), "pca", components=9)
    with pytest.raises(ValueError, match=r"'channel-mean' needs image inputs \(C, H, W\).*\(6,\)"):
        Preprocess.fit(correlated(), "channel-mean")
    with pytest.raises(ValueError, match="unknown data.preprocess kind 'pcaa'; valid: center, mean-image, "
                                         "channel-mean, standardize, pca, pca-whiten, zca"):
        Preprocess.fit(correlated(), "pcaa")
    with pytest.raises(ValueError, match=r"covariance of all 9000 input features, above the 8192"):
        Preprocess.fit(torch.zeros(3, 9000), "zca")
    with pytest.raises(babysit.SpecError, match="data.preprocess 'pca' needs data.pca_components"):
        load_spec("digits-mlp", ["data.preprocess=pca"])
    with pytest.raises(babysit.SpecError, match="pca_components is only used with"):
        load_spec("digits-mlp", ["data.pca_components=4"])


@pytest.mark.parametrize("kind,k", [("center", None), ("mean-image", None), ("channel-mean", None),
                                    ("standardize", None), ("pca", 4), ("pca-whiten", 4), ("zca", None)])
def test_gradcheck_passes_for_every_kind(kind, k):
    x = torch.rand(50, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    prep = Preprocess.fit(x, kind, components=k)
    report = babysit.gradcheck(prep, x[:5])
    assert report.ok, str(report)


@pytest.mark.parametrize("kind", sorted(FITS))
def test_statistics_come_from_the_train_split_only(kind):
    overrides = [f"data.preprocess={kind}"] + (["data.pca_components=10"] if kind.startswith("pca") else [])
    spec = load_spec("digits-mlp", overrides)
    data = build_data(spec.data)
    other = dataclasses.replace(data, val=dataclasses.replace(data.val, x=data.val.x * 3 + 1),
                                test=dataclasses.replace(data.test, x=data.test.x.flip(-1)))
    a, b = build_model(spec, data).prep, build_model(spec, other).prep
    for name, buf in a.named_buffers():
        torch.testing.assert_close(buf, dict(b.named_buffers())[name], rtol=0, atol=0)
    moved = dataclasses.replace(data, train=dataclasses.replace(data.train, x=data.train.x * 3 + 1))
    assert not torch.equal(build_model(spec, moved).prep.mean, a.mean)  # and they do follow train


def test_pca_sets_the_model_input_width_and_cnn_refuses_flat_output():
    spec = load_spec("digits-mlp", ["data.preprocess=pca", "data.pca_components=12"])
    data = build_data(spec.data)
    model = build_model(spec, data)
    assert model.fc1.in_features == 12
    assert model(data.val.x[:7]).shape == (7, 10)
    cnn = load_spec("digits-cnn", ["data.preprocess=pca-whiten", "data.pca_components=12"])
    with pytest.raises(ValueError, match="flat vector of 12.*use zca"):
        build_model(cnn, data)


@pytest.mark.parametrize("kind,k", [("pca-whiten", 16), ("zca", None), ("channel-mean", None)])
def test_preprocessing_buffers_survive_a_checkpoint_round_trip(tmp_path, kind, k, device):
    over = [f"data.preprocess={kind}", "train.steps=30", "train.eval_every=30", "train.checkpoint_every=30",
            "watch.enabled=false"] + ([f"data.pca_components={k}"] if k else [])
    spec = load_spec("digits-mlp", over)
    trainer = build_trainer(spec, tmp_path / "run", progress=False)
    trainer.fit()
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    assert any(key.startswith("prep.") for key in state)
    # a model fit on other data gets the saved statistics back on load
    data = build_data(spec.data)
    other = dataclasses.replace(data, train=dataclasses.replace(data.train, x=data.train.x.flip(-1) * 2))
    fresh = build_model(spec, other)
    assert not torch.equal(fresh.prep.mean, trainer.model.prep.mean.cpu())
    fresh.load_state_dict(state)
    fresh.eval()
    trainer.model.eval()
    x = data.val.x[:32]
    fresh, on_cpu = fresh.to(device), load_run(tmp_path / "run", "cpu").model
    with torch.no_grad():
        trained = trainer.model(x.to(device))
        torch.testing.assert_close(fresh(x.to(device)), trained, rtol=0, atol=0)
        # the CPU's kernels may round differently from the GPU's
        exact = {"rtol": 0, "atol": 0} if device.type == "cpu" else {}
        torch.testing.assert_close(on_cpu(x), trained.cpu(), **exact)
