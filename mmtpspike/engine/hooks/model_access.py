"""How every hook of mmtpspike reaches the model behind a runner."""
from typing import List

import torch.nn as nn
from mmengine.model import is_model_wrapper


def unwrap_model(runner) -> nn.Module:
    """The runner's model without its DDP / FSDP / mmengine wrapper."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def pruned_backbones(runner) -> List[nn.Module]:
    """Modules of the runner's model that carry a token pruner."""
    return [m for m in unwrap_model(runner).modules()
            if getattr(m, 'pruner', None) is not None and
            hasattr(m, 'set_keep_ratios')]
