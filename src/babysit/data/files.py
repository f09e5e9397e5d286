"""Users' own data: arrays in .npz / .pt files, a CSV table (numeric feature columns and a label
column whose values become class ids in sorted order), or a folder of images with one sub-folder
per class."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from babysit.data.base import LOADERS, DataError, Dataset, Split, check_split, dataset_from_arrays, infer_num_classes

if TYPE_CHECKING:
    from babysit.spec import DataSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
PRESPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val")


def _as_tensor(value, key: str, path: Path) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value
    else:
        try:
            t = torch.from_numpy(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: '{key}' is not a numeric array ({exc})") from None
    if t.dtype.is_floating_point:
        return t.float()
    if t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        return t.long() if key.startswith("y") else t.float()
    raise DataError(f"{path}: '{key}' has dtype {t.dtype}; expected numbers")


def _read_csv(path: Path, target: str) -> tuple[dict, list[str]]:
    """x from every column but `target`, y from `target`'s values mapped to ids (numbers sorted as
    numbers, text as text); the class names in id order come back too."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if len(rows) < 2:
        raise DataError(f"{path}: a CSV table needs a header row and at least one data row")
    header, body = rows[0], rows[1:]
    if target not in header:
        raise DataError(f"{path}: no column {target!r} (data.target); the columns are {header}")
    t = header.index(target)
    features = [i for i in range(len(header)) if i != t]
    x = np.empty((len(body), len(features)), dtype=np.float32)
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} cells, but the header has {len(header)}")
        for j, i in enumerate(features):
            try:
                x[line - 2, j] = float(row[i])
            except ValueError:
                raise DataError(f"{path}, line {line}, column {header[i]!r}: {row[i]!r} is not a number; "
                                "feature columns must be numeric (encode categories as numbers first)") from None
    values = [row[t] for row in body]
    try:
        names = sorted(set(values), key=float)
    except ValueError:
        names = sorted(set(values))
    ids = {v: i for i, v in enumerate(names)}
    return {"x": x, "y": np.array([ids[v] for v in values], dtype=np.int64)}, names


def _read_table(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"data.path {path} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        if path.suffix == ".pt":
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, (tuple, list)) and len(obj) == 2:
                return {"x": obj[0], "y": obj[1]}
            if isinstance(obj, dict):
                return obj
            raise DataError(f"{path}: expected a dict of tensors or an (x, y) pair, got {type(obj).__name__}")
    except DataError:
        raise
    except Exception as exc:  # a corrupt or truncated file: say which and why
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    raise DataError(f"data.path {path}: unsupported suffix '{path.suffix}'; use .npz, .pt or .csv")


@LOADERS.register("arrays")
def load_arrays(spec: DataSpec) -> Dataset:
    """Keys `x`, `y` (split by data.split), or `x_train`, `y_train`, `x_val`, `y_val` [, `x_test`, `y_test`]."""
    path = Path(spec.path)
    if path.suffix.lower() == ".csv" and path.is_file():
        table, names = _read_csv(path, spec.target)
        data = dataset_from_arrays(torch.from_numpy(table["x"]), torch.from_numpy(table["y"]), spec, str(path),
                                   num_classes=len(names))
        data.extra["classes"] = names  # id -> the label as written in the table
        return data
    table = _read_table(path)
    if all(k in table for k in PRESPLIT_KEYS):
        return _presplit(table, path, spec.num_classes)
    if "x" not in table or "y" not in table:
        raise DataError(f"{path}: expected keys 'x' and 'y' (or {', '.join(PRESPLIT_KEYS)}), "
                        f"found {sorted(table)}")
    x, y = _as_tensor(table["x"], "x", path), _as_tensor(table["y"], "y", path)
    if y.dtype.is_floating_point:
        raise DataError(f"{path}: labels 'y' must be integer class indices, got floats")
    return dataset_from_arrays(x, y, spec, str(path), num_classes=spec.num_classes)


def _presplit(table: dict, path: Path, num_classes: int | None) -> Dataset:
    """The user's own split, used as given. The classes are those of the train labels (or
    data.num_classes): a val/test label beyond them is an error, not a silently wider output."""
    for name in ("train", "val", "test"):
        if (f"x_{name}" in table) != (f"y_{name}" in table):
            raise DataError(f"{path}: x_{name} and y_{name} come in pairs; found {sorted(table)}")
    parts = {name: (_as_tensor(table[f"x_{name}"], f"x_{name}", path),
                    _as_tensor(table[f"y_{name}"], f"y_{name}", path))
             for name in ("train", "val", "test") if f"x_{name}" in table}
    x_train, y_train = parts["train"]
    parts.setdefault("test", (x_train[:0], y_train[:0]))
    if num_classes is None:
        num_classes = infer_num_classes(y_train, f"{path}, train split")
    for name, (x, y) in parts.items():
        if x.shape[1:] != x_train.shape[1:]:
            raise DataError(f"{path}: x_{name} examples have shape {tuple(x.shape[1:])}, "
                            f"x_train's have {tuple(x_train.shape[1:])}")
        check_split(name, x, y, num_classes, str(path))
    return Dataset(*(Split(*parts[n]) for n in ("train", "val", "test")), num_classes=num_classes,
                   input_shape=tuple(x_train.shape[1:]), source=str(path))


@LOADERS.register("images")
def load_images(spec: DataSpec) -> Dataset:
    """root/<class>/<image>; classes in sorted order; pixels scaled to [0, 1], channels first."""
    from PIL import Image, UnidentifiedImageError

    root = Path(spec.path)
    if not root.is_dir():
        raise DataError(f"data.path {root} is not a folder of class sub-folders")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root}: no class sub-folders (expected {root}/<class>/<image>.png)")
    images, labels = [], []
    mode = "L" if spec.grayscale else "RGB"
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as im:
                    im = im.convert(mode)
                    if spec.image_size:
                        im = im.resize((spec.image_size[1], spec.image_size[0]))
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"cannot read image {file}: {exc}") from None
            if images and arr.shape != images[0].shape:
                raise DataError(f"{file} is {arr.shape[:2]} but earlier images are "
                                f"{images[0].shape[:2]}; set data.image_size: [H, W] to resize")
            images.append(arr)
            labels.append(label)
    if not images:
        raise DataError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders")
    x = torch.from_numpy(np.stack(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    ds = dataset_from_arrays(x, torch.tensor(labels), spec, str(root), num_classes=len(classes))
    ds.extra["classes"] = classes
    return ds
