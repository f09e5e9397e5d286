"""data.kind mnist1d: the package's generator offline, its test part kept, val cut from its train part."""
import random

import numpy as np
import pytest
import torch

from babysit.data import build_data
from babysit.data.mnist1d import generate
from babysit.errors import DataError, SpecError
from babysit.spec import load_spec, spec_from_dict

SMALL = 400  # sequences: 320 train, 80 test; generating them takes a tenth of a second


def mnist1d(**data):
    return build_data(spec_from_dict({"data": {"kind": "mnist1d", **data}, "model": {"kind": "cnn1d"}}).data)


def test_paper_sizes_shapes_and_standardized_values():
    data = mnist1d(split=[0.9, 0.1, 0.0])
    assert (len(data.train), len(data.val), len(data.test)) == (3600, 400, 1000)  # 4,000 train + 1,000 test
    assert data.input_shape == (1, 40) and data.num_classes == 10
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64
    every = torch.cat([data.train.x, data.val.x, data.test.x])
    assert every.mean().item() == pytest.approx(0.0, abs=1e-3) and every.std().item() == pytest.approx(1.0, abs=1e-3)
    assert torch.bincount(data.test.y, minlength=10).min() >= 80  # 500 per class, shuffled


def test_test_split_is_the_packages_and_val_comes_from_its_train_part():
    raw = generate(SMALL)
    data = mnist1d(num_samples=SMALL, split=[0.75, 0.25, 0.0])
    torch.testing.assert_close(data.test.x.squeeze(1), torch.from_numpy(raw["x_test"]).float())
    assert torch.equal(data.test.y, torch.from_numpy(raw["y_test"]))
    assert (len(data.train), len(data.val)) == (240, 80)  # 320 train sequences at 3:1
    train_part = torch.from_numpy(raw["x"]).float()
    rows = {tuple(r.tolist()) for r in train_part}
    assert all(tuple(r.tolist()) in rows for r in torch.cat([data.train.x, data.val.x]).squeeze(1))
    assert not {tuple(r.tolist()) for r in data.train.x.squeeze(1)} & {tuple(r.tolist()) for r in data.val.x.squeeze(1)}


def test_seed_makes_another_dataset_and_the_same_seed_the_same():
    a, b = mnist1d(num_samples=SMALL), mnist1d(num_samples=SMALL)
    other = mnist1d(num_samples=SMALL, seed=7)
    assert torch.equal(a.train.x, b.train.x)
    assert not torch.equal(a.test.x, other.test.x)


def test_shuffle_seq_permutes_the_positions_the_same_way_for_every_sequence():
    plain = generate(SMALL)["x_test"]
    shuffled = generate(SMALL, shuffle_seq=True)["x_test"]
    # each position of the shuffled set is one column of the plain set
    perm = [int(np.argmin(np.abs(plain - shuffled[:, [j]]).sum(0))) for j in range(40)]
    assert sorted(perm) == list(range(40)) and perm != list(range(40))
    np.testing.assert_allclose(shuffled, plain[:, perm], rtol=0, atol=1e-12)


def test_generating_leaves_the_global_generators_alone():
    random.seed(3)
    np.random.seed(3)
    expected = (random.random(), np.random.rand())
    random.seed(3)
    np.random.seed(3)
    generate(SMALL)
    assert (random.random(), np.random.rand()) == expected


def test_mnist1d_options_are_refused_on_other_kinds_and_a_split_without_val_is_an_error():
    with pytest.raises(SpecError, match=r"data.shuffle_seq only apply to data.kind mnist1d, not 'digits'"):
        load_spec("digits-mlp", ["data.shuffle_seq=true"])
    with pytest.raises(SpecError, match=r"data.num_samples, data.seed only apply"):
        load_spec("digits-mlp", ["data.num_samples=100", "data.seed=1"])
    with pytest.raises(DataError, match=r"leaves no train or no val sequences out of 8"):
        mnist1d(num_samples=10, split=[0.98, 0.02, 0.0])  # 8 train sequences, 0.16 of one for val
