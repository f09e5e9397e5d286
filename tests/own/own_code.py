"""A user's code as specs name it (model.factory, data.factory, loss: python:...): a network with
dropout, and blobs as torch Datasets of (x, y) pairs read one example at a time."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset


class Blobs(Dataset):
    """Gaussian blobs around one centre per class, made from a seed (no file needed)."""

    def __init__(self, n: int, seed: int, classes: int = 4, features: int = 8):
        g = torch.Generator().manual_seed(1234)
        centres = 3 * torch.randn(classes, features, generator=g)
        g.manual_seed(seed)
        self.y = torch.randint(0, classes, (n,), generator=g)
        self.x = centres[self.y] + torch.randn(n, features, generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def blob_datasets(n_train: int = 2048, n_val: int = 256):
    return Blobs(n_train, 1), Blobs(n_val, 2), Blobs(n_val, 3)


def blob_tensors(n_train: int = 512, n_val: int = 128, regression: bool = False):
    """(x_train, y_train, x_val, y_val) tensors; regression: one real target per example."""
    train, val = Blobs(n_train, 1), Blobs(n_val, 2)
    if regression:
        w = torch.linspace(-1, 1, train.x.shape[1])
        return train.x, train.x @ w + 5.0, val.x, val.x @ w + 5.0
    return train.x, train.y, val.x, val.y


def mlp(num_classes: int, input_shape: tuple, width: int = 32, dropout: float = 0.1) -> nn.Module:
    return nn.Sequential(nn.Linear(input_shape[0], width), nn.Tanh(), nn.Dropout(dropout),
                         nn.Linear(width, width), nn.Tanh(), nn.Linear(width, num_classes))


def huber(outputs, targets):
    return F.huber_loss(outputs.squeeze(-1), targets)


def not_a_module():
    return "a string"
