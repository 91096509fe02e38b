"""Set BN statistics of an untrained model from real inputs.

With the initial BN statistics (mean 0, variance 1) of an untrained SDT-V3
the multi-spike neurons after a few layers receive inputs far below their
threshold and stay silent, so firing rates, SOPs and energy say nothing.
Calibrating the statistics on real images makes the untrained model fire the
way a normalised network does; it stands in for a checkpoint, it does not
replace one.
"""
import contextlib
from typing import Iterator, Optional

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextlib.contextmanager
def calibrating_bn(module: nn.Module) -> Iterator[nn.Module]:
    """Context manager: forwards inside it set the BN running statistics.

    On entry every BN layer of ``module`` forgets its statistics and switches
    to training mode with a cumulative average (``momentum=None``), so the
    statistics become the mean over all forwards made inside; every other
    layer stays in eval mode (no dropout / drop path). On exit the module is
    in eval mode and each BN has its momentum back.

    Example:
        >>> with torch.no_grad(), calibrating_bn(net):
        ...     for image in images:
        ...         net(image)
    """
    module.eval()
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    try:
        yield module
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        module.eval()


def calibration_passes(requested: Optional[int], has_checkpoint: bool) -> int:
    """Passes of BN calibration a tool makes: ``requested`` when given,
    else 0 with a checkpoint (its statistics are real) and 1 without."""
    if requested is not None:
        return requested
    return 0 if has_checkpoint else 1
