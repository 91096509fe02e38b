"""Synchronised batch norm that also runs on CPU (gloo process groups)."""
import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm

from mmtpspike.registry import register_model


class _AllReduceSum(torch.autograd.Function):
    """Sum over the process group; the gradient is summed the same way
    (every rank's loss depends on the reduced value)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        tensor = tensor.clone()
        dist.all_reduce(tensor, group=group)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


@register_model
class CPUSyncBN(_BatchNorm):
    """Batch norm with statistics synchronised over the process group, on
    any device, gloo included.

    torch's ``SyncBatchNorm`` refuses CPU tensors, and DDP refuses CPU
    modules holding it; mmcv's ``MMSyncBN`` has CUDA kernels only. While
    training in a process group this layer all-reduces, per channel, the
    sum and count of the local batch into the global mean, then the sum of
    squared deviations into the global (biased) variance; gradients flow
    through both reductions as in torch's implementation, and ranks may hold
    different numbers of samples or tokens. Outside a process group and in
    evaluation it is a plain batch norm. Parameters and buffers are those
    of ``BatchNorm2d`` / ``SyncBatchNorm``, so checkpoints are
    interchangeable.

    The distributed tools use it for ``norm_cfg=dict(type='SyncBN')`` when
    they run on CPU. Inputs are ``[B, C]``, ``[B, C, N]`` or
    ``[B, C, H, W]``.

    Args:
        num_features (int): Channels ``C``.
        eps (float): Added to the variance. Defaults to 1e-5.
        momentum (float, optional): Running-average factor; None for a
            cumulative average. Defaults to 0.1.
        affine (bool): Learnable scale and shift. Defaults to True.
        track_running_stats (bool): Keep running statistics. Defaults to
            True.
        process_group (ProcessGroup, optional): Ranks to synchronise over.
            Defaults to the whole world.
    """

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 process_group=None) -> None:
        super().__init__(num_features, eps, momentum, affine,
                         track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'expected at least 2-D input (got '
                             f'{input.dim()}-D input)')

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalise ``[B, C, *]`` with statistics over all ranks."""
        if not (self.training and dist.is_available()
                and dist.is_initialized()):
            return super().forward(input)
        self._check_input_dim(input)
        factor = self._update_factor()
        group = self.process_group or dist.group.WORLD
        dims = [0] + list(range(2, input.dim()))
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = input.new_tensor([input.numel() / input.shape[1]])
        totals = _AllReduceSum.apply(
            torch.cat([input.sum(dims), count]), group)
        num = totals[-1].detach()
        if num.item() <= 1:
            raise ValueError('CPUSyncBN expects more than one value per '
                             'channel over all ranks when training')
        mean = totals[:-1] / num
        centred = input - mean.view(shape)
        var = _AllReduceSum.apply(centred.pow(2).sum(dims), group) / num
        output = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * num / (num - 1), factor)
        return output

    def _update_factor(self) -> float:
        """Running-average factor of this step (counts the step)."""
        if not self.track_running_stats:
            return 0.
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1. / float(self.num_batches_tracked)
        return self.momentum
