"""Data sets: the shipped names and digits, users' arrays and image folders, and their rejections."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from babysit.data import DataError, build_data
from babysit.spec import DataSpec

RNG_SEED = 0


def rejected(spec: DataSpec) -> str:
    with pytest.raises(DataError) as info:
        build_data(spec)
    return str(info.value)


def decode_words(y: torch.Tensor, vocab: list[str]) -> list[str]:
    """The names in a split, read back from its targets (each name ends with '.' = index 0)."""
    text = "".join(vocab[i] for i in y.tolist())
    assert text.endswith(".")
    return text[:-1].split(".")


# --- names ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def names():
    return build_data(DataSpec(kind="names", context=3))


def test_names_split_sizes_match_reference(names):
    # LECTURES.md §5: random.seed(42), shuffle, 80/10/10 over 32,033 names, context 3
    assert (len(names.train), len(names.val), len(names.test)) == (182625, 22655, 22866)


def test_names_vocab_is_end_token_then_letters(names):
    assert names.vocab == ["."] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    assert names.num_classes == 27
    assert names.input_shape == (3,)


def test_names_first_train_example(names):
    assert names.train.x[0].tolist() == [0, 0, 0]
    assert names.train.x.dtype == torch.long and names.train.y.dtype == torch.long
    # the reference's shuffle puts 'yuheng' first: targets y, u, h, ... and contexts slide
    assert decode_words(names.train.y[:7], names.vocab) == ["yuheng"]
    assert names.train.x[1].tolist() == [0, 0, 25]
    assert names.train.x[2].tolist() == [0, 25, 21]


def test_names_splits_hold_disjoint_whole_words(names):
    words = [decode_words(s.y, names.vocab) for s in (names.train, names.val, names.test)]
    assert [len(w) for w in words] == [25626, 3203, 3204]
    assert sum(len(w) for w in words) == 32033


def test_names_custom_file(tmp_path):
    given = ["anna", "bob", "carl", "dave", "emma", "fay", "gus", "hal", "ivy", "jo"]
    path = tmp_path / "few.txt"
    path.write_text("\n".join(given) + "\n\n")  # a blank line is skipped
    ds = build_data(DataSpec(kind="names", path=str(path), context=2))
    assert ds.vocab == ["."] + sorted(set("".join(given)))
    assert ds.num_classes == 20 and ds.input_shape == (2,)
    assert len(ds.train) + len(ds.val) + len(ds.test) == sum(len(w) + 1 for w in given)  # 43
    read_back = [w for s in ds.splits().values() for w in decode_words(s.y, ds.vocab)]
    assert sorted(read_back) == sorted(given)
    assert [len(decode_words(s.y, ds.vocab)) for s in ds.splits().values()] == [8, 1, 1]
    assert ds.train.x[0].tolist() == [0, 0]
    assert ds.source == str(path)


def test_names_file_with_dot_rejected(tmp_path):
    path = tmp_path / "dots.txt"
    path.write_text("anna\nmr.bob\ncarl\n")
    msg = rejected(DataSpec(kind="names", path=str(path)))
    assert str(path) in msg
    assert "'mr.bob'" in msg and "end token" in msg


def test_empty_names_file_rejected(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n   \n")
    msg = rejected(DataSpec(kind="names", path=str(path)))
    assert str(path) in msg and "holds no names" in msg


def test_missing_names_file_rejected(tmp_path):
    path = tmp_path / "absent.txt"
    msg = rejected(DataSpec(kind="names", path=str(path)))
    assert str(path) in msg and "cannot read names file" in msg


def test_names_file_too_small_for_a_val_split_rejected(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("ab\ncd\n")
    msg = rejected(DataSpec(kind="names", path=str(path)))
    assert str(path) in msg and "val split" in msg and "is empty" in msg


# --- digits --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return build_data(DataSpec(kind="digits"))


def test_digits_sizes_and_shape(digits):
    sizes = [len(s) for s in digits.splits().values()]
    assert sum(sizes) == 1797
    assert sizes == [1437, 180, 180]  # int(0.8 n), int(0.9 n) - int(0.8 n), the rest
    assert digits.input_shape == (1, 8, 8)
    assert tuple(digits.train.x.shape[1:]) == (1, 8, 8)
    assert digits.num_classes == 10


def test_digits_pixels_scaled_to_unit_range(digits):
    x = torch.cat([s.x for s in digits.splits().values()])
    assert x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # pixels are 0..16 counts scaled by 1/16
    assert torch.equal(x * 16, (x * 16).round())


def test_digits_every_class_present(digits):
    y = torch.cat([s.y for s in digits.splits().values()])
    counts = torch.bincount(y, minlength=10)
    assert counts.shape == (10,) and int(counts.min()) >= 170 and int(counts.sum()) == 1797
    assert set(digits.train.y.tolist()) == set(range(10))


def test_digits_split_is_fixed(digits):
    again = build_data(DataSpec(kind="digits"))
    for a, b in zip(digits.splits().values(), again.splits().values()):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_digits_split_seed_changes_split(digits):
    other = build_data(DataSpec(kind="digits", split_seed=7))
    assert len(other.train) == len(digits.train)
    assert not torch.equal(other.train.x, digits.train.x)


# --- arrays --------------------------------------------------------------------------------------

def make_xy(n: int = 20, d: int = 4, classes: int = 3):
    rng = np.random.default_rng(RNG_SEED)
    return rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % classes


def save_npz(tmp_path: Path, name: str = "data.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def arrays(path: Path, **kw) -> DataSpec:
    return DataSpec(kind="arrays", path=str(path), **kw)


def presplit(tmp_path: Path, y_val, x_val=None, name: str = "pre.npz") -> Path:
    x, y = make_xy(20)
    if x_val is None:
        x_val = np.random.default_rng(1).normal(size=(len(y_val), 4)).astype(np.float32)
    return save_npz(tmp_path, name, x_train=x, y_train=y, x_val=x_val, y_val=np.asarray(y_val))


def test_npz_x_y_split_by_fractions(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x=x, y=y)
    ds = build_data(arrays(path))
    assert [len(s) for s in ds.splits().values()] == [16, 2, 2]
    assert ds.num_classes == 3 and ds.input_shape == (4,)
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.long
    # every example kept exactly once, with its own label
    all_x = torch.cat([s.x for s in ds.splits().values()])
    all_y = torch.cat([s.y for s in ds.splits().values()])
    order = all_x[:, 0].argsort()
    expect = np.argsort(x[:, 0])
    assert np.allclose(all_x[order].numpy(), x[expect])
    assert all_y[order].tolist() == y[expect].tolist()


def test_pt_dict(tmp_path):
    x, y = make_xy(20)
    path = tmp_path / "data.pt"
    torch.save({"x": torch.from_numpy(x).double(), "y": torch.from_numpy(y).int()}, path)
    ds = build_data(arrays(path))
    assert [len(s) for s in ds.splits().values()] == [16, 2, 2]
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.long
    assert ds.num_classes == 3


def test_pt_tuple(tmp_path):
    x, y = make_xy(30, d=2, classes=5)
    path = tmp_path / "pair.pt"
    torch.save((torch.from_numpy(x), torch.from_numpy(y)), path)
    ds = build_data(arrays(path, split=(0.5, 0.5, 0.0)))
    assert [len(s) for s in ds.splits().values()] == [15, 15, 0]
    assert ds.num_classes == 5 and ds.input_shape == (2,)


def test_pt_single_tensor_rejected(tmp_path):
    path = tmp_path / "lone.pt"
    torch.save(torch.zeros(3), path)
    msg = rejected(arrays(path))
    assert str(path) in msg and "(x, y) pair" in msg and "Tensor" in msg


def test_presplit_keys_used_as_given(tmp_path):
    x, y = make_xy(20)
    xv = np.full((5, 4), 0.5, np.float32)
    xt = np.full((3, 4), -0.5, np.float32)
    path = save_npz(tmp_path, x_train=x, y_train=y, x_val=xv, y_val=np.array([2, 1, 0, 1, 2]),
                    x_test=xt, y_test=np.array([0, 0, 1]))
    ds = build_data(arrays(path, split=(0.34, 0.33, 0.33)))  # data.split is ignored for pre-split data
    assert [len(s) for s in ds.splits().values()] == [20, 5, 3]
    assert torch.equal(ds.train.x, torch.from_numpy(x))  # not shuffled
    assert ds.val.y.tolist() == [2, 1, 0, 1, 2] and ds.test.y.tolist() == [0, 0, 1]
    assert ds.num_classes == 3 and ds.input_shape == (4,)


def test_presplit_without_test_gives_empty_test(tmp_path):
    path = presplit(tmp_path, [0, 1, 2, 1])
    ds = build_data(arrays(path))
    assert [len(s) for s in ds.splits().values()] == [20, 4, 0]
    assert tuple(ds.test.x.shape) == (0, 4)


def test_presplit_val_label_beyond_train_labels_rejected(tmp_path):
    path = presplit(tmp_path, [0, 1, 7, 2, 0, 1])
    msg = rejected(arrays(path))
    assert str(path) in msg and "val split" in msg and "7" in msg


def test_presplit_negative_label_rejected(tmp_path):
    path = presplit(tmp_path, [0, 1, -1, 2, 0, 1])
    msg = rejected(arrays(path))
    assert str(path) in msg and "val split" in msg
    assert "label -1 at index 2" in msg and "[0, 2]" in msg


def test_presplit_nan_in_val_inputs_rejected(tmp_path):
    xv = np.zeros((6, 4), np.float32)
    xv[3, 1] = np.nan
    xv[4, 0] = np.nan
    path = presplit(tmp_path, [0, 1, 2, 0, 1, 2], x_val=xv)
    msg = rejected(arrays(path))
    assert str(path) in msg and "val split" in msg
    assert "2 NaN/Inf" in msg and "example 3" in msg


def test_presplit_shape_mismatch_rejected(tmp_path):
    path = presplit(tmp_path, [0, 1, 2], x_val=np.zeros((3, 5), np.float32))
    msg = rejected(arrays(path))
    assert str(path) in msg and "x_val" in msg and "(5,)" in msg and "(4,)" in msg


def test_presplit_float_labels_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x_train=x, y_train=y.astype(np.float32), x_val=x[:4], y_val=y[:4])
    msg = rejected(arrays(path))
    assert str(path) in msg and "train split" in msg and "integer class indices" in msg


def test_presplit_empty_val_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x_train=x, y_train=y, x_val=x[:0], y_val=y[:0])
    msg = rejected(arrays(path))
    assert str(path) in msg and "val split" in msg and "is empty" in msg


def test_negative_labels_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x=x, y=y - 1)
    msg = rejected(arrays(path))
    assert str(path) in msg
    assert re.search(r"(train|val|test) split: label -1 at index \d+ is out of range", msg), msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_inputs_rejected(tmp_path, bad):
    x, y = make_xy(20)
    x[5, 2] = bad
    path = save_npz(tmp_path, x=x, y=y)
    msg = rejected(arrays(path))
    assert str(path) in msg
    assert re.search(r"(train|val|test) split: 1 NaN/Inf input values", msg), msg


def test_nan_everywhere_reported_in_train_split(tmp_path):
    x, y = make_xy(20)
    x[:, 0] = np.nan
    path = save_npz(tmp_path, x=x, y=y)
    msg = rejected(arrays(path))
    assert "train split: 16 NaN/Inf input values, the first in example 0" in msg


def test_mismatched_lengths_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x=x, y=y[:19])
    msg = rejected(arrays(path))
    assert str(path) in msg and "20 inputs but 19 labels" in msg


def test_float_labels_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x=x, y=y.astype(np.float64))
    msg = rejected(arrays(path))
    assert str(path) in msg and "'y'" in msg and "integer class indices" in msg


def test_bool_labels_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x=x, y=y > 0)
    msg = rejected(arrays(path))
    assert str(path) in msg and "'y'" in msg and "bool" in msg


def test_two_dimensional_labels_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x=x, y=np.stack([y, y], 1))
    msg = rejected(arrays(path))
    assert "one index per example" in msg and "(20, 2)" in msg


def test_string_inputs_rejected(tmp_path):
    _, y = make_xy(20)
    path = save_npz(tmp_path, x=np.array(["a"] * 20), y=y)
    msg = rejected(arrays(path))
    assert str(path) in msg and "'x' is not a numeric array" in msg


def test_missing_keys_rejected_listing_found_keys(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, inputs=x, labels=y)
    msg = rejected(arrays(path))
    assert str(path) in msg
    assert "expected keys 'x' and 'y'" in msg and "x_train" in msg
    assert "found ['inputs', 'labels']" in msg


def test_partial_presplit_keys_rejected(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x_train=x, y_train=y)  # no val
    msg = rejected(arrays(path))
    assert "found ['x_train', 'y_train']" in msg


def test_random_bytes_npz_rejected(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(3).bytes(300))
    msg = rejected(arrays(path))
    assert f"cannot read {path}" in msg


def test_truncated_npz_rejected(tmp_path):
    x, y = make_xy(200)
    good = save_npz(tmp_path, "good.npz", x=x, y=y)
    path = tmp_path / "cut.npz"
    path.write_bytes(good.read_bytes()[:200])
    msg = rejected(arrays(path))
    assert f"cannot read {path}" in msg and "BadZipFile" in msg


def test_random_bytes_pt_rejected(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(4).bytes(300))
    msg = rejected(arrays(path))
    assert f"cannot read {path}" in msg


def test_truncated_pt_rejected(tmp_path):
    x, y = make_xy(200)
    good = tmp_path / "good.pt"
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, good)
    path = tmp_path / "cut.pt"
    path.write_bytes(good.read_bytes()[:300])
    msg = rejected(arrays(path))
    assert f"cannot read {path}" in msg


def test_nonexistent_path_rejected(tmp_path):
    path = tmp_path / "absent.npz"
    msg = rejected(arrays(path))
    assert f"data.path {path} does not exist" in msg


@pytest.mark.parametrize("suffix", [".npy", ".txt"])
def test_unsupported_suffix_rejected(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_text("1,2\n")
    msg = rejected(arrays(path))
    assert str(path) in msg and f"unsupported suffix '{suffix}'" in msg and ".npz, .pt or .csv" in msg


def test_empty_arrays_rejected(tmp_path):
    path = save_npz(tmp_path, x=np.zeros((0, 4), np.float32), y=np.zeros(0, np.int64))
    msg = rejected(arrays(path))
    assert str(path) in msg and "holds no examples" in msg


def test_too_few_examples_for_val_rejected(tmp_path):
    x, y = make_xy(2)
    path = save_npz(tmp_path, x=x, y=y)
    msg = rejected(arrays(path))
    assert "val split: is empty" in msg and "data.split" in msg


# --- images --------------------------------------------------------------------------------------

def save_png(path: Path, h: int, w: int, seed: int, mode: str = "RGB") -> np.ndarray:
    from PIL import Image

    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    pixels.flat[0], pixels.flat[1] = 0, 255  # pin the range
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


@pytest.fixture
def image_folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    for c, name in enumerate(("cat", "dog")):
        for i in range(6):
            save_png(root / name / f"{i}.png", h=4, w=5, seed=10 * c + i)
    (root / "dog" / "README.txt").write_text("not an image; skipped")
    return root


def test_image_folder_loads_channels_first(image_folder):
    ds = build_data(DataSpec(kind="images", path=str(image_folder), split=(0.5, 0.5, 0.0)))
    assert [len(s) for s in ds.splits().values()] == [6, 6, 0]
    assert ds.input_shape == (3, 4, 5)
    assert tuple(ds.train.x.shape) == (6, 3, 4, 5)
    assert ds.num_classes == 2 and ds.extra["classes"] == ["cat", "dog"]
    x = torch.cat([ds.train.x, ds.val.x])
    assert x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    y = torch.cat([ds.train.y, ds.val.y])
    assert sorted(y.tolist()) == [0] * 6 + [1] * 6


def test_image_pixels_match_file(tmp_path):
    root = tmp_path / "imgs"
    pixels = {}
    for name in ("a", "b"):
        for i in range(4):  # enough that both classes reach the train split (one class is refused)
            pixels[(name, i)] = save_png(root / name / f"{i}.png", h=4, w=5, seed=len(pixels))
    ds = build_data(DataSpec(kind="images", path=str(root), split=(0.5, 0.5, 0.0)))
    got = torch.cat([ds.train.x, ds.val.x]).numpy()
    want = [np.transpose(p, (2, 0, 1)) / 255.0 for p in pixels.values()]
    for w in want:  # each file's pixels appear, channels first, scaled by 1/255
        assert any(np.allclose(g, w, atol=1e-6) for g in got)


def test_grayscale_gives_one_channel(image_folder):
    ds = build_data(DataSpec(kind="images", path=str(image_folder), split=(0.5, 0.5, 0.0),
                             grayscale=True))
    assert ds.input_shape == (1, 4, 5)
    assert tuple(ds.val.x.shape) == (6, 1, 4, 5)
    assert 0.0 <= float(ds.train.x.min()) and float(ds.train.x.max()) <= 1.0


def test_mixed_sizes_without_image_size_rejected(image_folder):
    odd = image_folder / "dog" / "odd.png"
    save_png(odd, h=7, w=3, seed=99)
    msg = rejected(DataSpec(kind="images", path=str(image_folder), split=(0.5, 0.5, 0.0)))
    assert str(odd) in msg
    assert "(7, 3)" in msg and "(4, 5)" in msg
    assert "data.image_size" in msg


def test_mixed_sizes_with_image_size_accepted(image_folder):
    save_png(image_folder / "dog" / "odd.png", h=7, w=3, seed=99)
    ds = build_data(DataSpec(kind="images", path=str(image_folder), split=(0.5, 0.5, 0.0),
                             image_size=(6, 8)))
    assert ds.input_shape == (3, 6, 8)  # (H, W)
    assert len(ds.train) + len(ds.val) == 13


def test_corrupt_image_rejected_naming_file(image_folder):
    bad = image_folder / "cat" / "broken.png"
    bad.write_bytes(np.random.default_rng(5).bytes(200))
    msg = rejected(DataSpec(kind="images", path=str(image_folder), split=(0.5, 0.5, 0.0)))
    assert f"cannot read image {bad}" in msg


def test_truncated_image_rejected_naming_file(tmp_path, image_folder):
    big = tmp_path / "big.png"
    save_png(big, h=40, w=50, seed=7)
    cut = image_folder / "cat" / "cut.png"
    data = big.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    msg = rejected(DataSpec(kind="images", path=str(image_folder), split=(0.5, 0.5, 0.0),
                            image_size=(4, 5)))
    assert f"cannot read image {cut}" in msg


def test_empty_image_folder_rejected(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    msg = rejected(DataSpec(kind="images", path=str(root)))
    assert str(root) in msg and "no class sub-folders" in msg


def test_class_folders_without_images_rejected(tmp_path):
    root = tmp_path / "noimgs"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "notes.txt").write_text("x")
    msg = rejected(DataSpec(kind="images", path=str(root)))
    assert str(root) in msg and "no image files" in msg and ".png" in msg


def test_image_path_not_a_folder_rejected(tmp_path):
    path = tmp_path / "missing"
    msg = rejected(DataSpec(kind="images", path=str(path)))
    assert f"data.path {path} is not a folder" in msg


def test_presplit_x_without_y_is_named(tmp_path):
    x, y = make_xy(20)
    path = save_npz(tmp_path, x_train=x, y_train=y, x_val=x, y_val=y, x_test=x)
    msg = rejected(arrays(path))
    assert "x_test and y_test come in pairs" in msg and str(path) in msg


def test_explicit_num_classes_rejects_labels_beyond_it(tmp_path):
    x, y = make_xy(20)
    y[3] = 5
    path = save_npz(tmp_path, x=x, y=y)
    msg = rejected(DataSpec(kind="arrays", path=str(path), num_classes=3))
    assert "label 5" in msg and "[0, 2] for 3 classes" in msg
