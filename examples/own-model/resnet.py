"""A small ResNet-style CNN: a stem, residual blocks (conv-BN-ReLU-conv-BN, plus the input), global
average pooling and a linear classifier. babysit builds it from resnet.yaml's model.factory and
passes num_classes and input_shape (the factory asks for them by name)."""
from torch import nn


class ResidualBlock(nn.Module):
    """x + F(x): the identity path lets gradients reach early layers unchanged."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)  # BatchNorm follows: no bias
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act2 = nn.ReLU()

    def forward(self, x):
        h = self.act1(self.bn1(self.conv1(x)))
        return self.act2(x + self.bn2(self.conv2(h)))


class SmallResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int, blocks: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.pool(self.blocks(self.stem(x))).flatten(1))


def build(num_classes: int, input_shape: tuple, width: int = 16, blocks: int = 2) -> nn.Module:
    return SmallResNet(input_shape[0], num_classes, width, blocks)
