"""model.kind cnn1d and gru on MNIST-1D sequences: their layers, lengths and parameter counts
against the paper's models, watched by Watch, and trained a few hundred steps past chance."""
import json
import math

import pytest
import torch
from torch import nn

from babysit import build_trainer, load_spec
from babysit.data import build_data
from babysit.errors import DataError, SpecError
from babysit.models import build_model
from babysit.nn.lsuv import lsuv_
from babysit.report.plots import write_plots
from babysit.train.evaluate import evaluate
from babysit.watch import Watch

SMALL = ["data.num_samples=1000"]  # 800 train / 200 test sequences: fast to generate and to train on


@pytest.fixture(scope="module")
def seqs():
    return build_data(load_spec("mnist1d-cnn", SMALL).data)


def test_paper_cnn_has_the_papers_layers_lengths_and_parameters(seqs):
    model = build_model(load_spec("mnist1d-cnn", SMALL), seqs)
    names = [n for n, _ in model.named_children()]
    assert names == ["conv1", "act1", "conv2", "act2", "conv3", "act3", "flatten", "out"]
    assert [model[i].stride for i in (0, 2, 4)] == [(2,), (2,), (2,)]
    assert model.out.in_features == 125  # 25 channels x 5 positions, as the paper's linear_in
    # the paper's ConvBase with kernel 3 throughout: 3 convs of 25 channels and a 125 -> 10 layer
    assert sum(p.numel() for p in model.parameters()) == (25 * 3 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)
    assert model(seqs.train.x[:7]).shape == (7, 10)


def test_cnn1d_with_batchnorm_pooling_and_a_hidden_layer(seqs):
    spec = load_spec("mnist1d-best-cnn", [*SMALL, "model.hidden=[16]", "model.dropout=0.5"])
    model = build_model(spec, seqs)
    names = [n for n, _ in model.named_children()]
    assert names[:4] == ["conv1", "bn1", "act1", "pool1"] and "drop1" not in names  # no dropout on convs
    assert model.conv1.bias is None and isinstance(model.bn1, nn.BatchNorm1d)  # BN follows: no bias
    assert model.fc4.in_features == 32 * 5 and "drop4" in names  # 40 -> 20 -> 10 -> 5 positions
    assert isinstance(model.pool1, nn.MaxPool1d)
    # kaiming init with GELU's gain sqrt(2) over fan-in 1 x 5
    torch.manual_seed(0)
    model = build_model(load_spec("mnist1d-best-cnn", [*SMALL, "model.channels=[256]"]), seqs)
    assert model.conv1.weight.std().item() == pytest.approx(math.sqrt(2) / math.sqrt(5), rel=0.05)


def test_gru_reads_every_position_and_flattens_its_outputs(seqs):
    model = build_model(load_spec("mnist1d-gru", SMALL), seqs)
    gru = model.gru.gru
    assert (gru.input_size, gru.hidden_size, gru.bidirectional) == (1, 6, True)
    assert model.out.in_features == 40 * 12  # the paper's flat_size: 2 x hidden x time steps
    x = seqs.train.x[:5]
    out, _ = gru(x.transpose(1, 2))
    torch.testing.assert_close(model(x), model.out(out.reshape(5, -1)))
    single = build_model(load_spec("mnist1d-gru", [*SMALL, "model.bidirectional=false", "model.gru_layers=2",
                                                   "model.hidden=[32]"]), seqs)
    assert single.gru.gru.num_layers == 2 and single.fc1.in_features == 40 * 6


def test_wrong_input_shapes_are_clear_errors(seqs):
    with pytest.raises(SpecError, match="model.kind 'cnn1d' reads sequences, but data.kind 'digits' holds "
                                        "images: use model.kind mlp or cnn"):
        load_spec("digits-cnn", ["model.kind=cnn1d"])
    with pytest.raises(SpecError, match="model.kind 'cnn' reads images.*use model.kind mlp or cnn1d or gru"):
        load_spec("mnist1d-cnn", ["model.kind=cnn"])
    digits = build_data(load_spec("digits-cnn").data)  # arrays data of any shape pass the spec: the build checks
    with pytest.raises(DataError, match=r"model.kind 'cnn1d' needs sequence inputs \(C, L\), got shape \(1, 8, 8\)"):
        build_model(load_spec("mnist1d-cnn", SMALL), digits)
    with pytest.raises(DataError, match=r"model.kind 'cnn' needs image inputs \(C, H, W\), got shape \(1, 40\)"):
        build_model(load_spec("digits-cnn"), seqs)
    with pytest.raises(DataError, match="flat vector of 8, which model.kind 'gru' cannot take"):
        build_model(load_spec("mnist1d-gru", [*SMALL, "data.preprocess=pca", "data.pca_components=8"]), seqs)


def test_watch_sees_conv1d_activations_and_the_gru_parameters(seqs):
    cnn = build_model(load_spec("mnist1d-best-cnn", SMALL), seqs)
    order = Watch._module_order(cnn)
    assert order[:4] == [["conv1", "weights"], ["act1", "gelu"], ["conv2", "weights"], ["act2", "gelu"]]
    gru = build_model(load_spec("mnist1d-gru", SMALL), seqs)
    opt = torch.optim.Adam(gru.parameters(), lr=0.01)
    watch = Watch(gru, opt, every=10)
    loss = nn.functional.cross_entropy(gru(seqs.train.x[:100]), seqs.train.y[:100])
    opt.zero_grad()
    loss.backward()
    opt.step()
    watch.step(loss)
    watch.flush()
    names = {p["name"] for p in watch.samples[0]["params"]}
    assert {"gru.gru.weight_ih_l0", "gru.gru.weight_hh_l0_reverse", "out.weight"} <= names


def test_lsuv_initializes_conv1d_layers_to_unit_output_std(seqs):
    model = build_model(load_spec("mnist1d-cnn", SMALL), seqs, init=False)
    stds = lsuv_(model, seqs.train.x[:256])
    assert set(stds) >= {"conv1", "conv2", "conv3"}
    assert all(abs(stds[k] - 1) < 0.05 for k in ("conv1", "conv2", "conv3"))


@pytest.mark.parametrize("preset,steps,floor", [("mnist1d-cnn", 300, 0.40), ("mnist1d-gru", 150, 0.35)])
def test_short_training_on_mnist1d_beats_chance_and_the_doctor_reads_it(tmp_path, preset, steps, floor):
    # chance is 10%; measured at these budgets on 800 train sequences, seeds 0-3 (200 test
    # sequences): cnn 0.53-0.575, gru 0.465-0.52
    spec = load_spec(preset, [*SMALL, f"train.steps={steps}", f"train.eval_every={steps // 3}",
                              "train.log_every=50", f"train.checkpoint_every={steps}", "watch.every=50"])
    trainer = build_trainer(spec, tmp_path / "run", progress=False)
    trainer.fit()
    assert evaluate(trainer.model, trainer.data.test)["acc"] > floor
    findings = json.loads((tmp_path / "run" / "findings.json").read_text())["findings"]
    assert not [f for f in findings if f["severity"] == "error"]
    # the figures: the GRU has no activation module, so no (empty) activation figures for it
    drawn = {p.stem for p in write_plots(tmp_path / "run")}
    activation_figures = {"activations", "activation_gradients", "depth"}
    assert {"weight_gradients", "update_ratio", "loss", "accuracy"} <= drawn
    assert (activation_figures <= drawn) == (preset == "mnist1d-cnn")
    assert not activation_figures & drawn or preset == "mnist1d-cnn"
