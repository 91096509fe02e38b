"""Move the keep ratios of pruned backbones from 1.0 to their target."""
from typing import Sequence, Union

from mmengine.hooks import Hook

from mmtpspike.registry import register_hook
from .model_access import pruned_backbones


@register_hook
class RetentionScheduleHook(Hook):
    """Linear retention schedule for fine-tuning with token pruning.

    ``keep(t) = 1 - (1 - target) * clip((t - begin) / (end - begin), 0, 1)``
    per block, where ``t`` counts iterations (or epochs with ``by_epoch``).
    Validation and testing use the ratio reached so far (the target once the
    schedule is over).

    Args:
        target (float | list[float]): Final keep ratio(s), in the format of
            ``pruning.keep_ratios``.
        begin (int): Step where the ratios start to fall. Default: 0.
        end (int): Step where they reach the target. Default: 1000.
        by_epoch (bool): Count epochs instead of iterations. Default: False.
    """

    priority = 'HIGH'

    def __init__(self,
                 target: Union[float, Sequence[float]],
                 begin: int = 0,
                 end: int = 1000,
                 by_epoch: bool = False) -> None:
        if end <= begin:
            raise ValueError(f'RetentionScheduleHook needs end > begin, got '
                             f'begin={begin}, end={end}')
        targets = [target] if isinstance(target, (int, float)) else target
        if any(not 0 < t <= 1 for t in targets):
            raise ValueError(f'RetentionScheduleHook.target values must be in '
                             f'(0, 1], got {target}')
        self.target = target
        self.begin = begin
        self.end = end
        self.by_epoch = by_epoch

    def ratios_at(self, step: int) -> Union[float, list]:
        """Keep ratio(s) at a step."""
        progress = min(max((step - self.begin) / (self.end - self.begin), 0.),
                       1.)
        if isinstance(self.target, (int, float)):
            return 1 - (1 - self.target) * progress
        return [1 - (1 - t) * progress for t in self.target]

    def before_run(self, runner) -> None:
        if not pruned_backbones(runner):
            raise RuntimeError(
                'RetentionScheduleHook found no backbone with token pruning; '
                'set model.backbone.pruning=dict(keep_ratios=1.0, ...)')

    def _apply(self, runner, step: int) -> None:
        ratios = self.ratios_at(step)
        for backbone in pruned_backbones(runner):
            backbone.set_keep_ratios(ratios)
        mean = ratios if isinstance(ratios, float) else sum(ratios) / len(
            ratios)
        runner.message_hub.update_scalar('train/keep_ratio_target', mean)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self.by_epoch:
            self._apply(runner, runner.iter)

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._apply(runner, runner.epoch)
