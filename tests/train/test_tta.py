"""Test-time augmentation (LECTURES.md §1: "test-time 10-crop"): averaged probabilities."""
import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from babysit import build_trainer, load_spec
from babysit.cli import main
from babysit.data import DataError, Split
from babysit.train.evaluate import evaluate
from babysit.train.evaluate import member_log_probs
from babysit.train.tta import evaluate_tta, fivecrop_views, tencrop_views, tta_views


class SumPool(nn.Module):
    """Logits from each channel's pixel sum: blind to mirroring and to shifts that keep the content."""

    def __init__(self, channels=2, classes=3):
        super().__init__()
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        return self.fc(x.sum(dim=(2, 3)))


def centred_images(n=40, pad=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 2, 10, 10)
    x[:, :, pad:-pad, pad:-pad] = torch.rand(n, 2, 10 - 2 * pad, 10 - 2 * pad, generator=g)
    return Split(x, torch.randint(0, 3, (n,), generator=g))


@pytest.mark.parametrize("mode", ["flip", "tencrop", "fivecrop"])
def test_tta_of_an_invariant_model_equals_plain_eval(mode):
    torch.manual_seed(0)
    model, split = SumPool(), centred_images()
    plain, tta = evaluate(model, split), evaluate_tta(model, split, mode, padding=2)
    assert tta["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    assert tta["acc"] == plain["acc"]


def test_tta_averages_probabilities_of_the_views():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 10 * 10, 3))  # not flip-invariant
    x = centred_images(8).x
    with torch.no_grad():
        expected = (F.softmax(model(x), 1) + F.softmax(model(x.flip(-1)), 1)) / 2
        plain = F.softmax(model(x), 1)
    got = member_log_probs([model], x, tta_views("flip"))[0].exp()
    torch.testing.assert_close(got, expected)
    assert (got - plain).abs().max() > 1e-3
    torch.testing.assert_close(got.sum(1), torch.ones(8))


def test_tencrop_views_are_the_centre_four_corners_and_mirrors():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    views = tencrop_views(x, padding=1)
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    torch.testing.assert_close(views[0], x)  # the centre crop of the padded image is the image
    top_left = torch.zeros(1, 1, 4, 4)
    top_left[..., 1:, 1:] = x[..., :3, :3]  # window at (0, 0) of the padded image: content moves down-right
    torch.testing.assert_close(views[1], top_left)
    for plain, mirrored in zip(views[:5], views[5:]):
        torch.testing.assert_close(mirrored, plain.flip(-1))
    for a, b in zip(fivecrop_views(x, padding=1), views[:5]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_tta_needs_images_and_a_known_mode():
    model = nn.Linear(3, 2)
    with pytest.raises(DataError, match=r"--tta flip needs image inputs"):
        evaluate_tta(model, Split(torch.rand(4, 3), torch.zeros(4, dtype=torch.long)), "flip")
    with pytest.raises(ValueError, match="unknown tta mode 'rotate'; valid: flip, tencrop, fivecrop"):
        tta_views("rotate")


def test_eval_cli_tta(tmp_path):
    spec = load_spec("digits-cnn", ["train.steps=40", "train.eval_every=40", "train.checkpoint_every=40",
                                    "watch.enabled=false", "data.augment=[{name: crop, padding: 1}]"])
    trainer = build_trainer(spec, tmp_path / "run", progress=False)
    trainer.fit()
    runner = CliRunner()
    out = {}
    for mode in (None, "flip", "tencrop", "fivecrop"):
        args = ["eval", str(tmp_path / "run"), "--json"] + (["--tta", mode] if mode else [])
        res = runner.invoke(main, args)
        assert res.exit_code == 0, res.output
        out[mode] = json.loads(res.output)
    val = trainer.data.val
    assert out[None]["loss"] == pytest.approx(evaluate(trainer.model, val)["loss"], rel=1e-5)
    assert out[None]["tta"] is None
    for mode in ("flip", "tencrop", "fivecrop"):  # the crops use the spec's crop padding (1)
        assert out[mode]["tta"] == mode
        assert out[mode]["loss"] == pytest.approx(evaluate_tta(trainer.model, val, mode, 1)["loss"], rel=1e-5)
        assert out[mode]["loss"] != pytest.approx(out[None]["loss"], rel=1e-3)
    text = runner.invoke(main, ["eval", str(tmp_path / "run"), "--tta", "flip"]).output
    assert text.startswith("val tta flip: loss ")
