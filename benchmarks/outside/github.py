"""Bugs reported in GitHub issues and pull requests of PyTorch projects, re-expressed as small loops
on synthetic data shaped like the project's (the issue or PR is named in each docstring)."""
import torch
import torch.nn.functional as F
from torch import nn

import babysit
from outside.data import batches, broken, fit, images, sequences, standardize, tabular, tokens


@broken({"activation-before-loss"}, layer="softmax#0")
def gh_har_softmax_before_ce(seed):
    """github.com/jindongwang/Deep-learning-activity-recognition issue #10: F.softmax at the end of
    the HAR CNN's forward, then nn.CrossEntropyLoss (sensor windows, 9 channels, 6 activities)"""
    x, y = sequences(seed, n=512, length=64, features=9, classes=6)

    class HAR(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv1d(9, 32, 5), nn.ReLU(), nn.MaxPool1d(2))
            self.fc = nn.Sequential(nn.Linear(32 * 30, 64), nn.ReLU(), nn.Linear(64, 6))

        def forward(self, x):
            out = self.conv(x.transpose(1, 2)).flatten(1)
            return F.softmax(self.fc(out), dim=1)

    torch.manual_seed(seed)
    model, criterion = HAR(), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y, criterion, 300, 64, seed)


@broken({"activation-before-loss"}, layer="softmax#0")
def gh_llama_softmax_logits(seed):
    """github.com/bkitano/llama-from-scratch issue #5: SimpleBrokenModel, embedding -> MLP ->
    F.softmax(dim=-1), then F.cross_entropy(logits.view(-1, vocab), targets.view(-1))"""
    x, y = tokens(seed)
    vocab = 27

    class SimpleBrokenModel(nn.Module):
        def __init__(self, d_model=64):
            super().__init__()
            self.embedding = nn.Embedding(vocab, d_model)
            self.linear = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, vocab))

        def forward(self, idx):
            return F.softmax(self.linear(self.embedding(idx)), dim=-1)

    torch.manual_seed(seed)
    model = SimpleBrokenModel()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    watch = babysit.Watch(model, opt)
    for idx in batches(len(x), 32, 300, seed):
        logits = model(x[idx])
        loss = F.cross_entropy(logits.view(-1, vocab), y[idx].view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        watch.step(loss)
    return watch


@broken({"activation-before-loss"}, layer="token.1")
def gh_gluefactory_sigmoid_bce_logits(seed):
    """github.com/cvg/glue-factory issue #89: TokenConfidence = nn.Sequential(nn.Linear(dim, 1),
    nn.Sigmoid()) trained with nn.BCEWithLogitsLoss (sigmoid twice); also yudi-mars/daisyRec PR #15"""
    x, y = tabular(seed, [0.0] * 32, [1.0] * 32, n=1024)

    class TokenConfidence(nn.Module):
        def __init__(self, dim=32):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
            self.token = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())

        def forward(self, desc):
            return self.token(self.body(desc)).squeeze(-1)

    torch.manual_seed(seed)
    model, loss_fn = TokenConfidence(), nn.BCEWithLogitsLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y.float(), loss_fn, 300, 64, seed)


def _bn_cnn(conv_bias: bool):
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=conv_bias), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1, bias=conv_bias), nn.BatchNorm2d(32),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


@broken({"batchnorm-small-batch"}, layer="1")
def gh_batchnorm_batch_2(seed):
    """github.com/xuebinqin/BASNet issue #42 and tinghuiz/SfMLearner issue #30: a BatchNorm network
    trained at batch size 1-4 (here 2), its statistics estimated from two examples"""
    x, y = images(seed, n=256, channels=3, size=16)
    x = standardize(x, (0, 2, 3))
    torch.manual_seed(seed)
    model = _bn_cnn(conv_bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return fit(model, opt, x, y, F.cross_entropy, 300, 2, seed)


@broken({"bias-before-norm"}, layer="0")
def gh_unet_conv_bias_before_bn(seed):
    """github.com/milesial/Pytorch-UNet PR #325 'delete convolution bias before BN' (also
    4uiiurz1/pytorch-nested-unet issue #39): Conv2d(bias=True) straight into BatchNorm2d"""
    x, y = images(seed, n=256, channels=3, size=16)
    x = standardize(x, (0, 2, 3))
    torch.manual_seed(seed)
    model = _bn_cnn(conv_bias=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y, F.cross_entropy, 200, 32, seed)


def _mlp_classifier(seed):
    x, y = tabular(seed, [0.0] * 20, [1.0] * 20, n=2048, classes=4)
    torch.manual_seed(seed)
    return x, y, nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))


@broken({"grads-not-zeroed"}, layer="optimizer")
def gh_no_zero_grad_sgd(seed):
    """github.com/pytorch/pytorch issue #47175 ('an extremely nasty bug ... forgetting to call
    zero_grad()'): SGD with momentum, optimizer.zero_grad() never called"""
    x, y, model = _mlp_classifier(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    watch = babysit.Watch(model, opt)
    for idx in batches(len(x), 32, 300, seed):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        watch.step(loss)
    return watch


@broken({"grads-not-zeroed"}, layer="optimizer")
def gh_no_zero_grad_adam(seed):
    """github.com/wenet-e2e/wekws PR #73 ('optimizer.zero_grad() is not called' in its executor,
    Adam); also meta-pytorch/torchforge PR #71"""
    x, y, model = _mlp_classifier(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    watch = babysit.Watch(model, opt)
    for idx in batches(len(x), 32, 300, seed):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        watch.step(loss)
    return watch


@broken({"grads-not-zeroed"}, layer="optimizer")
def gh_zero_grad_once_an_epoch(seed):
    """github.com/pytorch/pytorch issue #47175: zero_grad() called 'at the beginning of each epoch
    instead of the beginning of each iteration' (64 steps an epoch, AdamW)"""
    x, y, model = _mlp_classifier(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    watch = babysit.Watch(model, opt)
    for epoch in range(5):
        opt.zero_grad()
        for idx in batches(len(x), 32, 64, seed + epoch):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            watch.step(loss)
    return watch


@broken({"log-of-softmax", "non-finite"}, layer="loss")
def gh_log_of_softmax_nan(seed):
    """github.com/pytorch/pytorch issue #1620: crit(torch.log(nn.Softmax()(model(data))), target)
    with nn.NLLLoss gives NaN gradients where nn.LogSoftmax does not (here at a high rate)"""
    x, y = tabular(seed, [0.0] * 20, [1.0] * 20, n=1024, classes=10)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 10))
    sm, crit = nn.Softmax(dim=1), nn.NLLLoss()
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    watch = babysit.Watch(model, opt)
    for idx in batches(len(x), 32, 200, seed):
        loss = crit(torch.log(sm(model(x[idx]))), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        watch.step(loss)
    return watch
