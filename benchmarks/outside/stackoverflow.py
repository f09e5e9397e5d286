"""Stack Overflow programs from DeepLocalize's benchmark (github.com/Wardat-ISU/DeepLocalize,
Benchmark/StackOverflow/<post>/Buggy Code and Correct Code; the fault is what the correct version
changes) and from DeepFD's (github.com/ArabelaTso/DeepFD, Benchmark/Subjects), re-expressed in
PyTorch. Keras' softmax + categorical_crossentropy is F.cross_entropy on logits here; where the
Keras program puts an activation before a loss that cannot take it, the PyTorch program does too."""
import torch
import torch.nn.functional as F
from torch import nn

from outside.data import broken, fit, images, standardize, tabular


@broken({"activation-before-loss"}, layer="5")
def so_31880720_softmax_one_unit(seed):
    """DeepLocalize Benchmark/StackOverflow/31880720: Dense(50, relu) x2, Dense(1) +
    Activation('softmax') under binary_crossentropy, RMSprop, batch 1 (fixed: sigmoid)"""
    x, y = tabular(seed, [0.0] * 16, [1.0] * 16)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(16, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 1),
                          nn.Softmax(dim=1))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y.float()[:, None], F.binary_cross_entropy, 300, 1, seed)


@broken({"activation-before-loss"}, layer="5")
def so_34311586_softmax_mse(seed):
    """DeepLocalize Benchmark/StackOverflow/34311586: Dense(2) sigmoid, Dense(3) sigmoid, Dense(1) +
    softmax under mean_squared_error, SGD 0.001 with Nesterov momentum 0.9"""
    x, y = tabular(seed, [0.0, 0.0], [1.0, 1.0])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1),
                          nn.Softmax(dim=1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    return fit(model, opt, x, y.float()[:, None], F.mse_loss, 300, 32, seed)


@broken({"loss-diverged", "non-finite", "exploding-gradients", "update-ratio-high"})
def so_48385830_lr_3(seed):
    """DeepLocalize Benchmark/StackOverflow/48385830: Dense(30) and Dense(10) with no activation,
    RandomNormal(stddev=1) weights and biases, mean_squared_error, SGD lr 3.0 (fixed: sigmoid,
    softmax, cross-entropy)"""
    x, y = images(seed, n=512)
    x = x.flatten(1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 30), nn.Linear(30, 10))
    for m in model:
        nn.init.normal_(m.weight, std=1.0)
        nn.init.normal_(m.bias, std=1.0)
    opt = torch.optim.SGD(model.parameters(), lr=3.0)
    return fit(model, opt, x, F.one_hot(y, 10).float(), F.mse_loss, 100, 10, seed)


@broken({"data-not-centered"}, layer="input")
def so_44066044_unscaled_features(seed):
    """DeepLocalize Benchmark/StackOverflow/44066044: 11 raw wine-quality features (fixed:
    preprocessing.scale(X)), Dense(12, relu) x2, Dense(1) sigmoid, binary_crossentropy, Adam, batch
    5"""
    means = [8.3, 0.53, 0.27, 2.5, 0.087, 15.9, 46.5, 0.997, 3.31, 0.66, 10.4]
    stds = [1.7, 0.18, 0.19, 1.4, 0.047, 10.5, 32.9, 0.002, 0.15, 0.17, 1.1]
    x, y = tabular(seed, means, stds)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(11, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y.float()[:, None], F.binary_cross_entropy_with_logits, 300, 5, seed)


@broken({"data-not-centered", "saturated-activations"}, layer="input")
def so_52800582_unscaled_regression(seed):
    """DeepLocalize Benchmark/StackOverflow/52800582: x in [0, 400) and y = f(x) unscaled (fixed:
    StandardScaler on both), Dense(50, sigmoid), Dense(50), Dense(1), mse, Adam, full batch"""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(400, 1, generator=g) * 400
    y = 0.05 * x ** 2 + 10 * torch.sin(x / 20) + torch.randn(400, 1, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 50), nn.Sigmoid(), nn.Linear(50, 50), nn.Linear(50, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y, F.mse_loss, 300, 400, seed)


@broken({"data-not-centered"}, layer="input")
def so_55328966_raw_pixels(seed):
    """DeepLocalize Benchmark/StackOverflow/55328966: MNIST pixels 0-255 (fixed: /255), Dense(784),
    Dense(h1, relu), Dense(10), gradient descent on categorical cross-entropy"""
    x, y = images(seed, n=512, pixels=255.0)
    x = x.flatten(1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, 784), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    return fit(model, opt, x, y, F.cross_entropy, 200, 32, seed)


@broken({"saturated-activations", "loss-plateau"}, layer="3")
def so_48221692_sigmoid_regression(seed):
    """DeepLocalize Benchmark/StackOverflow/48221692: Dense(5, sigmoid) and an output
    Activation('sigmoid') for a regression whose targets lie far above 1 (fixed: a linear output),
    mse, SGD, full batch"""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(200, 1, generator=g) * 2 - 1
    y = 20 + 10 * x ** 2 + 0.1 * torch.randn(200, 1, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 5), nn.Sigmoid(), nn.Linear(5, 1), nn.Sigmoid())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return fit(model, opt, x, y, F.mse_loss, 400, 200, seed)


@broken({"activation-before-loss"}, layer="10")
def so_47352366_relu_output(seed):
    """DeepLocalize Benchmark/StackOverflow/47352366: Conv2D(relu) x2, Dense(relu) and an output
    Dense(10, activation='relu') under categorical cross-entropy, Adam, batch 50"""
    x, y = images(seed, n=500)
    x = standardize(x, (0, 2, 3))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10), nn.ReLU())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y, F.cross_entropy, 150, 50, seed)


@broken({"activation-before-loss"}, layer="3")
def so_59278771_sigmoid_softmax(seed):
    """DeepLocalize Benchmark/StackOverflow/59278771 (iris): Dense(4, relu), Dense(3) +
    Activation('sigmoid') under categorical cross-entropy, Adam, batch 5"""
    x, y = tabular(seed, [0.0] * 4, [1.0] * 4, n=150, classes=3)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3), nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y, F.cross_entropy, 300, 5, seed)


@broken({"loss-plateau", "update-ratio-low", "vanishing-gradients", "saturated-activations"})
def deepfd_31556268_xor_mae(seed):
    """DeepFD Benchmark/Subjects/31556268 (also DeepLocalize's StackOverflow/31556268): XOR,
    Dense(4) sigmoid, Dense(1) sigmoid, mean_absolute_error, SGD 0.05 with momentum 0.11, batch 4;
    DeepFD's faults: the loss (mse), the rate (0.1) and the epochs"""
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid())
    nn.init.xavier_uniform_(model[0].weight)
    nn.init.xavier_uniform_(model[2].weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.11, nesterov=True)
    return fit(model, opt, x, y, F.l1_loss, 1000, 4, seed)
