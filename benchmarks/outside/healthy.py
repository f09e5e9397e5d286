"""Healthy programs: what the doctor must stay silent on (no warning, no error), in shapes users
write: pytorch/examples' MNIST recipe, a run converged to ~0 loss, an MSE regression, a BatchNorm
CNN with AdamW, recurrent and attention models, gradient accumulation, logits with
BCE-with-logits, dict outputs with a frozen layer."""

import torch
import torch.nn.functional as F
from torch import nn

import babysit
from outside.data import batches, fit, healthy, images, regression, sequences, standardize, tabular, tokens

@healthy
def examples_mnist_adadelta(seed):
    """github.com/pytorch/examples mnist/main.py: Conv(32), Conv(64), max-pool, dropout, fc 128,
    log_softmax + nll_loss, Adadelta at lr 1.0 with StepLR(gamma 0.7), inputs normalized by (0.1307,
    0.3081); an lr of 1.0 trips 'lr > 0.01' rules elsewhere"""
    x, y = images(seed, n=512)
    x = (x - x.mean()) / x.std()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 1), nn.Conv2d(32, 64, 3, 1)
            self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
            self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
            x = F.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))
            return F.log_softmax(self.fc2(self.dropout2(x)), dim=1)

    torch.manual_seed(seed)
    model = Net()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=50, gamma=0.7)
    return fit(model, opt, x, y, F.nll_loss, 150, 32, seed, schedule)


@healthy
def converged_tanh_mlp(seed):
    """the issue's false alarm: a tanh MLP fit by SGD to a train loss of ~2.5e-4 was told to raise
    its lr"""
    x, y = tabular(seed, [0.0] * 10, [1.0] * 10, n=128, classes=3)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    return fit(model, opt, x, y, F.cross_entropy, 1500, 128, seed)


@healthy
def mse_regression(seed):
    """an MSE regression on standardized features and targets (sklearn's make_regression shape),
    Adam"""
    x, y = regression(seed)
    y = (y - y.mean()) / y.std()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y, F.mse_loss, 600, 32, seed)


@healthy
def batchnorm_cnn_adamw(seed):
    """a BatchNorm CNN (conv without bias, BN, ReLU) with AdamW and weight decay, batch 32"""
    x, y = images(seed, n=512, channels=3, size=16)
    x = standardize(x, (0, 2, 3))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    return fit(model, opt, x, y, F.cross_entropy, 300, 32, seed)


class _Recurrent(nn.Module):
    def __init__(self, cell, features=1, hidden=32, classes=4):
        super().__init__()
        self.rnn, self.head = cell(features, hidden, batch_first=True), nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


@healthy
def lstm_classifier(seed):
    """an LSTM sequence classifier, Adam, gradient clipping at 1.0"""
    x, y = sequences(seed)
    torch.manual_seed(seed)
    model = _Recurrent(nn.LSTM)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    watch = babysit.Watch(model, opt)
    for idx in batches(len(x), 32, 300, seed):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        watch.step(loss)
    return watch


@healthy
def gru_waves(seed):
    """a GRU on MNIST-1D-like waves (the shape of issue 20's model), Adam"""
    x, y = sequences(seed)
    torch.manual_seed(seed)
    model = _Recurrent(nn.GRU)
    return fit(model, torch.optim.Adam(model.parameters(), lr=3e-3), x, y, F.cross_entropy, 300, 32, seed)


@healthy
def transformer_tokens(seed):
    """a small transformer classifier: nn.TransformerEncoderLayer (GELU called as a function), mean
    pooling, AdamW with a linear warm-up"""
    x, y = tokens(seed, context=8)
    y = y[:, -1]

    class Classifier(nn.Module):
        def __init__(self, vocab=27, d=32):
            super().__init__()
            self.embed, self.pos = nn.Embedding(vocab, d), nn.Parameter(torch.zeros(8, d))
            self.block = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.0, activation="gelu", batch_first=True)
            self.head = nn.Linear(d, vocab)

        def forward(self, idx):
            return self.head(self.block(self.embed(idx) + self.pos)[:, -1])

    torch.manual_seed(seed)
    model = Classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    return fit(model, opt, x, y, F.cross_entropy, 300, 32, seed, warmup)


@healthy
def accumulation_4(seed):
    """gradient accumulation over 4 micro-batches (loss / 4, one optimizer step and zero_grad after
    the fourth; watch.step once per optimizer step), AdamW"""
    x, y = tabular(seed, [0.0] * 20, [1.0] * 20, n=2048, classes=4)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    watch = babysit.Watch(model, opt)
    for i, idx in enumerate(batches(len(x), 16, 4 * 250, seed)):
        loss = F.cross_entropy(model(x[idx]), y[idx]) / 4
        loss.backward()
        if (i + 1) % 4 == 0:
            opt.step()
            opt.zero_grad()
            watch.step(loss * 4)
    return watch


@healthy
def bce_with_logits_functional(seed):
    """binary classification on logits with nn.BCEWithLogitsLoss (no sigmoid in the model), SGD with
    Nesterov momentum, functional F.relu"""
    x, y = tabular(seed, [0.0] * 16, [1.0] * 16, n=1024)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(16, 64), nn.Linear(64, 64), nn.Linear(64, 1)

        def forward(self, x):
            return self.out(F.relu(self.fc2(F.relu(self.fc1(x))))).squeeze(1)

    torch.manual_seed(seed)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    return fit(model, opt, x, y.float(), nn.BCEWithLogitsLoss(), 400, 32, seed)


@healthy
def frozen_dict_outputs(seed):
    """fine-tuning shape: a frozen pretrained-like first layer, a model returning a dict ({'logits':
    ...}), SGD with cosine decay"""
    x, y = tabular(seed, [0.0] * 20, [1.0] * 20, n=1024, classes=5)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Linear(20, 64), nn.Tanh())
            self.head = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 5))

        def forward(self, x):
            features = self.backbone(x)
            return {"features": features, "logits": self.head(features)}

    torch.manual_seed(seed)
    model = Net()
    model.backbone.requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=400)
    return fit(model, opt, x, y, lambda out, y: F.cross_entropy(out["logits"], y), 400, 32, seed, cosine)


@healthy
def softmax_regression(seed):
    """softmax regression (no hidden layer, nothing for Watch's activation rules), plain SGD"""
    x, y = tabular(seed, [0.0] * 20, [1.0] * 20, n=1024, classes=4)
    torch.manual_seed(seed)
    model = nn.Linear(20, 4)
    return fit(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, F.cross_entropy, 300, 32, seed)


