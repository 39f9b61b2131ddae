"""Models: CIFAR-style ResNet (with or without shortcuts) and a feed-forward net."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainables.config import TrialConfig


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm; the identity (or 1x1 projection) shortcut is optional."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.use_shortcut = shortcut
        self.proj: nn.Module = nn.Identity()
        if shortcut and (stride != 1 or c_in != c_out):
            # why: option B of He et al. (1x1 conv) so widths can change between stages
            self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.use_shortcut:
            out = out + self.proj(x)
        return F.relu(out)


class ResNet(nn.Module):
    """CIFAR-style ResNet: depth = 6n + 2; three stages of n blocks at width, 2x, 4x channels."""

    def __init__(self, *, depth: int, width: int, shortcut: bool, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"ResNet depth must be 6n+2 (8, 14, 20, ...), but got {depth=}.")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = width
        for stage in range(3):
            c_out = width * 2**stage
            for i in range(n):
                blocks.append(BasicBlock(c_in, c_out, 2 if (stage > 0 and i == 0) else 1, shortcut))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class FFNN(nn.Module):
    """depth hidden layers of width units with ReLU; images are flattened."""

    def __init__(self, *, depth: int, width: int, in_features: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_features
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def init_weights(model: nn.Module, scheme: str) -> None:
    """xavier: Glorot uniform on conv and linear weights; kaiming: He normal (fan_out, ReLU)."""
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_model(cfg: TrialConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if cfg.model == "resnet":
        if len(input_shape) != 3:
            raise ValueError(f"resnet needs image input (C, H, W), but got {input_shape=}.")
        model: nn.Module = ResNet(
            depth=cfg.depth, width=cfg.width, shortcut=cfg.shortcut, in_channels=input_shape[0], num_classes=num_classes
        )
    else:
        in_features = 1
        for s in input_shape:
            in_features *= s
        model = FFNN(depth=cfg.depth, width=cfg.width, in_features=in_features, num_classes=num_classes)
    init_weights(model, cfg.init)
    return model
