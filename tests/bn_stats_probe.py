"""A hook for distributed tool tests: every rank saves its BN statistics.

Import it with ``custom_imports`` (``tests/`` on ``PYTHONPATH``); after
training each rank writes ``bn_stats_rank<r>.pth`` into the work dir:
``{module name: (class name, running_mean, running_var)}`` of every batch
norm.
"""
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm


@HOOKS.register_module()
class BNStatsProbeHook(Hook):
    """Save each rank's running BN statistics after training."""

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        stats = {
            name: (type(m).__name__, m.running_mean.clone(),
                   m.running_var.clone())
            for name, m in model.named_modules() if isinstance(m, _BatchNorm)
        }
        torch.save(stats,
                   osp.join(runner.work_dir, f'bn_stats_rank{runner.rank}.pth'))
