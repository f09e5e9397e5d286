"""What a sampled forward records beyond activation modules: activations called as functions, the
order in which layers run (pairing), reused modules, the model's input, and every parameter of
RNN and attention layers in `babysit stats`."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from babysit import Watch
from babysit.doctor import RunView
from babysit.watch.table import WatchRecord, layer_rows

FIELDS = ("mean", "std", "saturated", "zero", "dead", "grad_mean", "grad_std")


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(12, 32), nn.Linear(32, 32), nn.Linear(32, 5)

    def forward(self, x):
        return self.out(F.relu(self.fc2(torch.tanh(self.fc1(x)))))


def _steps(model, watch, n=1, x=None, y=None, lr=0.1):
    opt = watch.optimizer
    torch.manual_seed(1)
    x = torch.randn(64, 12) * 2 if x is None else x
    y = torch.randint(0, 5, (len(x),)) if y is None else y
    for _ in range(n):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        watch.step(loss)
    watch.flush()
    return watch


def test_functional_activations_match_their_hooked_module_twins():
    torch.manual_seed(0)
    fn = Functional()
    twin = nn.Sequential(fn.fc1, nn.Tanh(), fn.fc2, nn.ReLU(), fn.out)  # the same weights, as modules
    state = {k: v.clone() for k, v in fn.state_dict().items()}
    got = _steps(fn, Watch(fn, torch.optim.SGD(fn.parameters(), lr=0.1), every=10)).samples[0]["layers"]
    fn.load_state_dict(state)
    ref = _steps(twin, Watch(twin, torch.optim.SGD(twin.parameters(), lr=0.1), every=10)).samples[0]["layers"]
    assert [(r["name"], r["kind"]) for r in got] == [("tanh#0", "tanh"), ("relu#0", "relu")]
    assert [r["kind"] for r in ref] == ["tanh", "relu"]
    for mine, hooked in zip(got, ref):
        for f in FIELDS:
            if hooked[f] is None:
                assert mine[f] is None
            else:
                assert mine[f] == pytest.approx(hooked[f], rel=1e-5, abs=1e-9), (mine["name"], f)
        assert mine["hist"] == pytest.approx(hooked["hist"])
    assert got[0]["saturated"] > 0.01 and got[1]["zero"] > 0.1  # neither check is vacuous


class OutOfOrder(nn.Module):
    """Declared fc1, fc2, fc3, act1, act2; run fc1 -> act1 -> fc2 -> act2 -> fc3."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 16), nn.Linear(16, 16), nn.Linear(16, 5)
        self.act1, self.act2 = nn.Tanh(), nn.ReLU()

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 16), nn.Linear(16, 16), nn.Linear(16, 5)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def test_activations_pair_with_the_layer_that_ran_before_them(tmp_path):
    torch.manual_seed(0)
    model = OutOfOrder()
    watch = Watch(model, torch.optim.SGD(model.parameters(), lr=0.1), every=10, run_dir=tmp_path)
    _steps(model, watch)
    watch.close()
    assert watch.order == [["fc1", "weights"], ["act1", "tanh"], ["fc2", "weights"], ["act2", "relu"],
                           ["fc3", "weights"]]
    assert RunView.from_watch(watch).feeding_weights() == {"act1": "fc1.weight", "act2": "fc2.weight"}
    record = WatchRecord(tmp_path)
    rows = {r["layer"]: r["weight"] for r in layer_rows(record, record.samples[0])}
    assert rows["act1"] == "fc1.weight" and rows["act2"] == "fc2.weight" and rows["fc3"] == "fc3.weight"


def test_a_reused_activation_is_recorded_at_each_call():
    torch.manual_seed(0)
    model = Reused()
    seen = []
    model.act.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    watch = _steps(model, Watch(model, torch.optim.SGD(model.parameters(), lr=0.1), every=10))
    rows = {r["name"]: r for r in watch.samples[0]["layers"]}
    assert list(rows) == ["act", "act#1"]
    assert rows["act"]["std"] == pytest.approx(seen[0].std().item(), rel=1e-5)
    assert rows["act#1"]["std"] == pytest.approx(seen[1].std().item(), rel=1e-5)
    assert RunView.from_watch(watch).feeding_weights() == {"act": "fc1.weight", "act#1": "fc2.weight"}


class Recurrent(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(6, 16, batch_first=True)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        h, _ = self.rnn(x)
        a, _ = self.attn(h, h, h)
        return self.head(torch.tanh(a[:, -1]))


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_rnn_and_attention_parameters_all_appear_in_stats(tmp_path, cell):
    torch.manual_seed(0)
    model = Recurrent(cell)
    watch = Watch(model, torch.optim.Adam(model.parameters(), lr=1e-3), every=10, run_dir=tmp_path)
    x, y = torch.randn(32, 7, 6), torch.randint(0, 5, (32,))
    _steps(model, watch, x=x, y=y)
    watch.close()
    record = WatchRecord(tmp_path)
    rows = layer_rows(record, record.samples[0])
    shown = {r["weight"] for r in rows}
    assert {n for n, _ in model.named_parameters()} <= shown
    by_layer = {r["layer"]: r for r in rows}
    assert by_layer["tanh#0"]["weight"] == "attn.in_proj_weight"  # the last weight layer that ran
    # the gates run inside torch's RNN kernel and the attention softmax inside
    # F.multi_head_attention_forward: neither is reachable (README, "Watching every layer")
    assert [r["name"] for r in record.samples[0]["layers"]] == ["tanh#0"]
    assert RunView.from_watch(watch).weight_of("rnn") == "rnn.weight_ih_l0"


def test_transformer_layer_activations_are_recorded_by_their_owner():
    torch.manual_seed(0)
    model = nn.Sequential(nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, activation="gelu",
                                                     batch_first=True), nn.Flatten(), nn.Linear(16 * 5, 5))
    watch = Watch(model, torch.optim.Adam(model.parameters(), lr=1e-3), every=10)
    _steps(model, watch, x=torch.randn(32, 5, 16), y=torch.randint(0, 5, (32,)))
    assert [r["name"] for r in watch.samples[0]["layers"]] == ["0.gelu#0"]


def test_a_model_without_activations_is_said_once():
    model = nn.Linear(12, 5)
    with pytest.warns(UserWarning, match="no activation of Linear"):
        watch = _steps(model, Watch(model, torch.optim.SGD(model.parameters(), lr=0.1), every=1), n=3)
    assert len(watch.samples) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        watch.step()  # sampled again: no second warning


def test_input_statistics_per_feature_and_per_channel():
    torch.manual_seed(0)
    model = Functional()
    x = torch.randn(64, 12) * torch.arange(1, 13) + 3 * torch.arange(1, 13)  # mean 3k, std k
    watch = _steps(model, Watch(model, torch.optim.SGD(model.parameters(), lr=1e-3), every=10), x=x)
    inputs = watch.samples[0]["inputs"]
    std, mean = torch.std_mean(x, dim=0)
    assert inputs["mean_abs_over_std"] == pytest.approx((mean.abs() / std).mean().item(), rel=1e-5)
    assert inputs["std_spread"] == pytest.approx((std.max() / std.min()).item(), rel=1e-5)
    assert inputs["features"] == 12
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    images = torch.rand(16, 3, 8, 8) * 255
    cw = Watch(conv, torch.optim.SGD(conv.parameters(), lr=1e-6), every=10)
    _steps(conv, cw, x=images, y=torch.randint(0, 5, (16,)))
    per_channel = images.transpose(0, 1).reshape(3, -1)
    expected = (per_channel.mean(1).abs() / per_channel.std(1)).mean().item()
    assert cw.samples[0]["inputs"]["features"] == 3
    assert cw.samples[0]["inputs"]["mean_abs_over_std"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_a_compiled_model_is_watched_without_recompiling_at_every_sample():
    """The hooks and the recording run outside the compiled graph (torch.compiler.disable): every
    sample is recorded, and once the first samples have compiled their variants, later samples
    compile nothing new."""
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    torch._dynamo.reset()
    counters.clear()
    model = Functional()
    compiled = torch.compile(model, backend="aot_eager")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    watch = Watch(model, opt, every=20)
    x, y = torch.randn(64, 12), torch.randint(0, 5, (64,))
    graphs = {}
    for step in range(1, 201):
        loss = F.cross_entropy(compiled(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        watch.step(loss)
        graphs[step] = counters["stats"]["unique_graphs"]
    watch.flush()
    assert [len(s["layers"]) for s in watch.samples] == [2] * 15  # tanh#0 and relu#0 at every sample
    assert graphs[200] == graphs[60] <= 8  # samples at 80, 100, ..., 200 added no graph
