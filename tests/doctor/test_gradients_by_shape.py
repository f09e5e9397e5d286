"""Depth ratios compare only layers with the same positions per example (review: a healthy CNN
with global average pooling read as vanishing, ratio 0.0018, because each conv element gets
1/(H*W) of the pooled gradient)."""
import torch
from doctor_helpers import codes, layer, sample, view
from torch import nn

import babysit
from babysit.doctor import RULES


def _shaped(name, shape, grad_std, kind="relu"):
    return {**layer(name, kind=kind, saturated=None, grad_std=grad_std), "shape": shape}


def test_a_conv_map_is_not_compared_with_a_vector_layer():
    rows = [_shaped("c1", [16, 32, 32], 1e-5), _shaped("c2", [32, 32, 32], 1.2e-5), _shaped("f1", [64], 1e-2),
            _shaped("f2", [64], 1.1e-2)]
    v = view(samples=[sample(1, rows), sample(200, rows)])
    assert RULES["vanishing-gradients"](v) == []
    assert RULES["exploding-gradients"](v) == []
    # within one group the rule still speaks: the conv maps two orders apart
    rows[0] = _shaped("c1", [16, 32, 32], 1e-8)
    assert codes(RULES["vanishing-gradients"](view(samples=[sample(1, rows), sample(200, rows)]))) == \
        [("vanishing-gradients", "c1")]
    rows[0] = _shaped("c1", [16, 32, 32], 1e-2)
    assert codes(RULES["exploding-gradients"](view(samples=[sample(1, rows), sample(200, rows)]))) == \
        [("exploding-gradients", "c1")]


def test_watch_records_per_example_shapes_and_a_healthy_pooled_cnn_has_no_gradient_finding():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    w = babysit.Watch(model, opt, every=5)
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    for _ in range(6):
        idx = torch.randint(0, 64, (16,))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        w.step(loss)
    found = {f.code for f in w.findings(num_classes=10)}
    rows = w.samples[0]["layers"]
    assert [r["shape"] for r in rows] == [[8, 32, 32], [16, 32, 32], [32]]
    # the pooled conv map's gradient is ~1/1024 of the Linear layer's: the old single ratio fired
    assert rows[1]["grad_std"] / rows[2]["grad_std"] < 1e-2
    assert not found & {"vanishing-gradients", "exploding-gradients"}
