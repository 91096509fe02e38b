"""Inference-time fusion: fold BatchNorm into the conv before it."""
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

CONVS = (nn.Conv1d, nn.Conv2d)


def fold_bn_into_conv(conv: nn.Module, norm: _BatchNorm) -> None:
    """Fold an eval-mode BN into ``conv`` in place (``conv`` gains a bias).

    ``y = gamma * (W x + b - mean) / sqrt(var + eps) + beta``.
    """
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(
        norm.running_mean)
    shape = (-1, ) + (1, ) * (conv.weight.dim() - 1)
    conv.weight = nn.Parameter(conv.weight * scale.view(shape))
    conv.bias = nn.Parameter((bias - norm.running_mean) * scale + norm.bias)


@torch.no_grad()
def fuse_conv_bn(model: nn.Module) -> int:
    """Fold every BN that directly follows a conv among its siblings.

    The BN is replaced by ``nn.Identity``. Only valid in eval mode (running
    statistics); the model is put in eval mode.

    Returns:
        int: number of folded pairs.
    """
    model.eval()
    folded = 0
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (_, first), (name, second) in zip(children, children[1:]):
            if isinstance(first, CONVS) and isinstance(second, _BatchNorm) \
                    and second.track_running_stats and \
                    second.num_features == first.out_channels:
                fold_bn_into_conv(first, second)
                setattr(parent, name, nn.Identity())
                folded += 1
    return folded
