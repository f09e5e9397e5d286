"""CSV tables: numeric feature columns, a label column whose values become class ids in sorted
order, and the id -> label mapping kept with the model (the checkpoint)."""
import numpy as np
import torch

from babysit import build_trainer, load_spec
from babysit.data import build_data
from babysit.layout import CHECKPOINT


def iris_like(path, n=150, seed=0):
    g = np.random.default_rng(seed)
    names = ["setosa", "versicolor", "virginica"]
    rows = ["sepal_length,petal_length,species"]
    for i in range(n):
        c = i % 3
        rows.append(f"{g.normal(5 + c):.3f},{g.normal(1.5 + 2 * c, 0.3):.3f},{names[c]}")
    path.write_text("\n".join(rows) + "\n")
    return names


def test_a_csv_table_trains_and_keeps_its_label_names(tmp_path):
    names = iris_like(tmp_path / "iris.csv")
    spec_path = tmp_path / "iris.yaml"
    spec_path.write_text("data: {kind: arrays, path: iris.csv, target: species, preprocess: standardize}\n"
                         "model: {hidden: [16], activation: relu}\noptim: {name: adam, lr: 0.01}\n"
                         "train: {steps: 150, eval_every: 150, batch_size: 16}\n")
    spec = load_spec(spec_path)  # iris.csv is found beside the spec, wherever the shell is
    data = build_data(spec.data)
    assert data.num_classes == 3 and data.input_shape == (2,) and data.extra["classes"] == names
    x, y = data.train.x, data.train.y
    assert x.dtype == torch.float32 and set(y.tolist()) == {0, 1, 2}
    summary = build_trainer(spec, tmp_path / "run", progress=False).fit()
    assert summary["val_acc"] > 0.8  # petal length separates the classes
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["classes"] == names


def test_numeric_labels_are_ordered_as_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n" + "".join(f"{i},{[2, 10, 1][i % 3]}\n" for i in range(60)))
    data = build_data(load_spec("digits-mlp", ["data.kind=arrays", f"data.path={path}", "data.target=label"]).data)
    assert data.extra["classes"] == ["1", "2", "10"]
