"""Move the keep ratios of pruned backbones from 1.0 to their target."""
from typing import Optional

from mmengine.hooks import Hook

from mmtpspike.models.pruning.config import Ratios
from mmtpspike.registry import register_hook
from .model_access import pruned_backbones


@register_hook
class RetentionScheduleHook(Hook):
    """Linear retention schedule for fine-tuning with token pruning.

    ``keep(t) = 1 - (1 - target) * clip((t - begin) / (end - begin), 0, 1)``
    per block, where ``t`` counts iterations (or epochs with ``by_epoch``).
    Validation and testing use the ratio reached so far (the target once the
    schedule is over).

    Every ratio a backbone prunes with is scheduled: ``keep_ratios`` towards
    ``target``, and ``mlp_keep_ratios`` / ``conv_keep_ratios`` towards
    ``mlp_target`` / ``conv_target``, which are required when the backbone's
    ``pruning`` sets those ratios (and refused when it does not). Dynamic
    retention (``pruning.dynamic``) chooses its ratios per image and cannot
    be scheduled: the hook refuses it.

    Args:
        target (float | list[float]): Final keep ratio(s), in the format of
            ``pruning.keep_ratios``.
        mlp_target (float | list[float], optional): Final
            ``mlp_keep_ratios``.
        conv_target (float | list[float], optional): Final
            ``conv_keep_ratios``.
        begin (int): Step where the ratios start to fall. Default: 0.
        end (int): Step where they reach the target. Default: 1000.
        by_epoch (bool): Count epochs instead of iterations. Default: False.
    """

    priority = 'HIGH'

    def __init__(self,
                 target: Ratios,
                 mlp_target: Optional[Ratios] = None,
                 conv_target: Optional[Ratios] = None,
                 begin: int = 0,
                 end: int = 1000,
                 by_epoch: bool = False) -> None:
        if end <= begin:
            raise ValueError(f'RetentionScheduleHook needs end > begin, got '
                             f'begin={begin}, end={end}')
        self.targets = dict(keep_ratios=target, mlp_keep_ratios=mlp_target,
                            conv_keep_ratios=conv_target)
        for field, value in self.targets.items():
            values = [value] if isinstance(value, (int, float)) else \
                value or []
            if any(not 0 < t <= 1 for t in values):
                raise ValueError(
                    f'RetentionScheduleHook targets must be in (0, 1], got '
                    f'{value} for {field}')
        self.begin = begin
        self.end = end
        self.by_epoch = by_epoch

    def ratios_at(self, step: int, field: str = 'keep_ratios') -> Ratios:
        """The ratio(s) of ``field`` (``'keep_ratios'``,
        ``'mlp_keep_ratios'`` or ``'conv_keep_ratios'``) at a step."""
        progress = min(max((step - self.begin) / (self.end - self.begin), 0.),
                       1.)
        target = self.targets[field]
        if isinstance(target, (int, float)):
            return 1 - (1 - target) * progress
        return [1 - (1 - t) * progress for t in target]

    def before_run(self, runner) -> None:
        backbones = pruned_backbones(runner)
        if not backbones:
            raise RuntimeError(
                'RetentionScheduleHook found no backbone with token pruning; '
                'set model.backbone.pruning=dict(keep_ratios=1.0, ...)')
        for backbone in backbones:
            self._check_matches(backbone.pruner.config)

    def _check_matches(self, config) -> None:
        """Refuse a schedule that would leave a ratio of ``config`` alone."""
        if config.dynamic is not None:
            raise ValueError(
                'RetentionScheduleHook cannot schedule pruning.dynamic: it '
                'chooses the retention per image; remove the hook or the '
                'dynamic setting')
        for field, argument in (('mlp_keep_ratios', 'mlp_target'),
                                ('conv_keep_ratios', 'conv_target')):
            configured = getattr(config, field) is not None
            scheduled = self.targets[field] is not None
            if configured and not scheduled:
                raise ValueError(
                    f'the backbone prunes with pruning.{field}; give '
                    f'RetentionScheduleHook {argument}=... so the schedule '
                    'moves it too')
            if scheduled and not configured:
                raise ValueError(
                    f'RetentionScheduleHook.{argument} is set but the '
                    f'backbone has no pruning.{field}; set it (e.g. to 1.0) '
                    f'or remove {argument}')

    def _apply(self, runner, step: int) -> None:
        ratios = {field: self.ratios_at(step, field)
                  for field, target in self.targets.items()
                  if target is not None}
        for backbone in pruned_backbones(runner):
            backbone.set_keep_ratios(**ratios)
        keep = ratios['keep_ratios']
        mean = keep if isinstance(keep, float) else sum(keep) / len(keep)
        runner.message_hub.update_scalar('train/keep_ratio_target', mean)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self.by_epoch:
            self._apply(runner, runner.iter)

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._apply(runner, runner.epoch)
