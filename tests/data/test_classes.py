"""data.classes: keep some labels, relabelled 0..k-1 in the order given, each example staying in
its split; bad values are refused with the valid range."""
import pytest
import torch

from babysit.data import DataError, build_data
from babysit.spec import SpecError, load_spec


def _data(*overrides):
    return build_data(load_spec("digits-mlp", list(overrides)).data)


def test_classes_keep_and_relabel():
    full, sub = _data(), _data("data.classes=[7,5,9]")
    assert sub.num_classes == 3
    for name in ("train", "val", "test"):
        a, b = full.splits()[name], sub.splits()[name]
        keep = (a.y == 7) | (a.y == 5) | (a.y == 9)
        assert torch.equal(b.x, a.x[keep])  # same examples, same order, same split
        assert torch.equal(b.y, torch.tensor([0, 1, 2])[((a.y[keep] == 5) * 1 + (a.y[keep] == 9) * 2)])
    assert len(sub.train) == int(((full.train.y == 5) | (full.train.y == 7) | (full.train.y == 9)).sum())


def test_label_out_of_range_names_the_valid_labels():
    with pytest.raises(DataError, match=r"data.classes \[10\] out of range .* valid labels are 0..9"):
        _data("data.classes=[3,10]")


@pytest.mark.parametrize("classes", ["[3]", "[3,3]", "[-1,2]"])
def test_bad_class_lists_are_refused(classes):
    with pytest.raises(SpecError, match=r"data.classes: must list at least 2 distinct labels >= 0.*\(got \["):
        load_spec("digits-mlp", [f"data.classes={classes}"])


def test_classes_are_not_for_names():
    with pytest.raises(SpecError, match="classes is for labelled data"):
        load_spec("makemore-bn", ["data.classes=[1,2]"])
