"""AUTOTRAINER's demo cases (github.com/shiningrain/AUTOTRAINER, AutoTrainer/demo_case and
AutoTrainer/data/simplednn.py), re-expressed in PyTorch. Their Keras models and configurations
that live only in .h5 / .pkl files are stood in for by the problem the case names and the repair
AUTOTRAINER logged for it."""
import torch
import torch.nn.functional as F
from torch import nn

from outside.data import blobs, broken, circles, fit, images, regression


@broken({"vanishing-gradients", "saturated-activations", "activations-collapse", "loss-plateau"})
def autotrainer_gradient_vanish(seed):
    """AUTOTRAINER demo_case/Gradient_Vanish_Case: circle data, 'vanish' found at epoch 90, solved
    by SeLU + lecun_uniform (its log); the model.h5 is binary, so the deep sigmoid MLP with
    RandomUniform(0, 1) weights of the classic vanishing-gradient demo on circles stands in"""
    x, y = circles(seed)
    torch.manual_seed(seed)
    layers = []
    for d_in in (2, 32, 32, 32, 32):
        layers += [nn.Linear(d_in, 32), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(32, 2))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, 0.0, 1.0)  # RandomUniform(minval=0, maxval=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return fit(model, opt, x, y, F.cross_entropy, 400, 32, seed)


@broken({"loss-oscillating", "loss-diverged", "non-finite", "update-ratio-high", "exploding-gradients"})
def autotrainer_oscillating_loss(seed):
    """AUTOTRAINER demo_case/Oscillating_Loss_Case: blob data, 'unstable' found at epoch 60, solved
    by switching the optimizer to Adam (its training_unstable log): SGD at too high a rate"""
    x, y = blobs(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 50), nn.ReLU(), nn.Linear(50, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    return fit(model, opt, x, y, F.cross_entropy, 400, 32, seed)


@broken({"activation-before-loss"}, layer="9")
def autotrainer_improper_activation(seed):
    """AUTOTRAINER demo_case/Improper_Activation_case/demo_activation.py: four Dense(50, relu,
    he_uniform) and Dense(3, activation='relu') under categorical cross-entropy, Adam 1e-4, batch
    256"""
    x, y = blobs(seed)
    torch.manual_seed(seed)
    layers = []
    for d_in in (2, 50, 50, 50):
        layers += [nn.Linear(d_in, 50), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(50, 3), nn.ReLU())  # the output's ReLU is module "9"
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    return fit(model, opt, x, y, F.cross_entropy, 300, 256, seed)


@broken({"activation-before-loss"}, layer="out2")
def autotrainer_loss_issue(seed):
    """AUTOTRAINER demo_case/Loss_Issue_Case/demo.py: Dense(3, activation='softmax') followed by
    Softmax(), trained with mean_squared_error, Adam 1e-4, batch 256 (softmax twice)"""
    x, y = blobs(seed)
    torch.manual_seed(seed)
    model = nn.Sequential()
    for i, d_in in enumerate((2, 50, 50, 50)):
        model.add_module(f"fc{i}", nn.Linear(d_in, 50))
        model.add_module(f"act{i}", nn.ReLU())
    model.add_module("fc_out", nn.Linear(50, 3))
    model.add_module("out1", nn.Softmax(dim=1))
    model.add_module("out2", nn.Softmax(dim=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    return fit(model, opt, x, F.one_hot(y, 3).float(), F.mse_loss, 300, 256, seed)


@broken({"data-not-centered"}, layer="input")
def autotrainer_data_issue(seed):
    """AUTOTRAINER demo_case/Data_Issue_case/demo_data.py: a CIFAR-10 CNN (Conv 16, Conv 36, Dense
    256, 128, 10; he_uniform, Adam 1e-3, batch 32) fed raw 0-255 pixels (the preprocess call is
    commented out)"""
    x, y = images(seed, n=512, channels=3, size=32, pixels=255.0)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
                          nn.Conv2d(16, 36, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
                          nn.Linear(36 * 6 * 6, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Dropout(0.25), nn.Linear(128, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fit(model, opt, x, y, F.cross_entropy, 120, 32, seed)


@broken({"dead-units"})
def autotrainer_dying_relu(seed):
    """AUTOTRAINER's dying-ReLU problem (AutoTrainer/data/simplednn.py, method 'relu': inputs
    uniform in [-1, 0], random binary labels): a ReLU MLP trained by SGD at too high a rate"""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(4000, 4, generator=g) - 1.0, torch.randint(0, 2, (4000,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    return fit(model, opt, x, y, F.cross_entropy, 300, 64, seed)


@broken({"exploding-gradients", "non-finite", "loss-diverged", "update-ratio-high"})
def autotrainer_exploding_gradient(seed):
    """AUTOTRAINER's exploding-gradient problem on its regression data (simplednn.py, method 'reg':
    make_regression, 20 features, unscaled targets): Dense(25, relu, he_uniform), SGD 0.01 with
    momentum 0.9 on mean squared error"""
    x, y = regression(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 25), nn.ReLU(), nn.Linear(25, 1))
    nn.init.kaiming_uniform_(model[0].weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return fit(model, opt, x, y, F.mse_loss, 200, 32, seed)
