"""Record neuron settings and keep ratios in checkpoints; check on load."""
import logging
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmtpspike.registry import register_hook
from mmtpspike.utils.spiking_meta import (META_KEY, RATIO_FIELDS,
                                          check_neuron_settings,
                                          collect_spiking_meta,
                                          pruning_ratios,
                                          saved_spiking_meta,
                                          spiking_backbones)
from .model_access import unwrap_model


@register_hook
class SpikingCheckpointHook(Hook):
    """Save how the spiking backbones ran; refuse weights trained otherwise.

    Saving: every checkpoint gets ``meta['mmtpspike']`` with each spiking
    backbone's neuron settings (type, ``D``, ``T``) and the keep ratios its
    pruner ran with, e.g. the ratios a ``RetentionScheduleHook`` reached.

    Loading (``load_from``, ``resume``, ``tools/test.py``), before the
    weights go into the model:

    * neuron settings that differ from the model's are an error naming both
      (a loud warning with ``allow_neuron_mismatch=True``);
    * keep ratios: with ``apply_keep_ratios=True`` (what ``tools/test.py``
      sets unless ``--cfg-options`` gives ratios) the pruner uses the saved
      ratios; a difference from the config's ratios is logged either way.

    ``tools/train.py`` and ``tools/test.py`` add this hook when a config
    lacks it; add it to ``custom_hooks`` when training with other tools.

    Args:
        apply_keep_ratios (bool): Use the keep ratios saved in the loaded
            checkpoint. Default: False.
        allow_neuron_mismatch (bool): Warn instead of failing on different
            neuron settings. Default: False.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 apply_keep_ratios: bool = False,
                 allow_neuron_mismatch: bool = False) -> None:
        self.apply_keep_ratios = apply_keep_ratios
        self.allow_neuron_mismatch = allow_neuron_mismatch

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[META_KEY] = collect_spiking_meta(
            unwrap_model(runner))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = saved_spiking_meta(checkpoint)
        model = unwrap_model(runner)
        check_neuron_settings(model, saved, self.allow_neuron_mismatch)
        if not saved:
            return
        for name, module in spiking_backbones(model).items():
            self._reconcile_keep_ratios(name, module, saved.get(name))

    def _reconcile_keep_ratios(self, name: str, module,
                               record: Optional[dict]) -> None:
        """Apply (or log) the ratios the checkpoint ran with where they
        differ from the config's (checkpoints before mlp / conv ratios were
        recorded carry ``keep_ratios`` only)."""
        pruner = getattr(module, 'pruner', None)
        record = record or {}
        if pruner is None or record.get('keep_ratios') is None:
            return
        current = pruning_ratios(pruner)
        saved = {field: record[field] for field in RATIO_FIELDS
                 if field in record}
        changed = {field: value for field, value in saved.items()
                   if value != current[field]}
        if not changed:
            return
        described = '; '.join(
            f'{field} {_short(value)}' for field, value in changed.items())
        if self.apply_keep_ratios:
            print_log(
                f'{name}: using the ratios saved in the checkpoint '
                f'({described}) instead of the config\'s; give '
                f'--cfg-options model.{name}.pruning.keep_ratios=... to '
                f'choose others', logger='current', level=logging.WARNING)
            module.set_keep_ratios(**saved)
        else:
            ours = '; '.join(f'{field} {_short(current[field])}'
                             for field in changed)
            print_log(
                f'{name}: the checkpoint ran with {described}; this run '
                f'uses {ours}', logger='current', level=logging.WARNING)


def _short(ratios) -> str:
    """``[0.78] * 8`` -> ``'0.78'``; other lists rounded; None -> 'unset'."""
    if ratios is None:
        return 'unset'
    values = [round(float(r), 4) for r in ratios]
    return str(values[0]) if len(set(values)) == 1 else str(values)


def add_spiking_checkpoint_hook(cfg, apply_keep_ratios: bool = False) -> None:
    """Make sure a config's ``custom_hooks`` has a
    :class:`SpikingCheckpointHook`, and set its ``apply_keep_ratios``.

    Args:
        cfg (Config): the config, changed in place.
        apply_keep_ratios (bool): whether loaded checkpoints' saved keep
            ratios replace the config's (``tools/test.py``: unless given on
            the command line).
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    ours = [h for h in hooks if h.get('type') in (
        'SpikingCheckpointHook', SpikingCheckpointHook)]
    if not ours:
        ours = [dict(type='SpikingCheckpointHook')]
        hooks.append(ours[0])
    ours[0]['apply_keep_ratios'] = apply_keep_ratios
    cfg.custom_hooks = hooks


def sets_keep_ratios(cfg_options) -> bool:
    """Whether ``--cfg-options`` choose keep ratios (or a whole pruning
    dict), which then win over the ratios saved in a checkpoint."""
    return any(key.endswith(('pruning.keep_ratios', '.pruning'))
               for key in (cfg_options or {}))
