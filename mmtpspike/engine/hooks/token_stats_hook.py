"""Log realised keep ratios and spike firing rates."""
from collections import defaultdict
from typing import Dict, List

from mmengine.hooks import Hook

from mmtpspike.models.layers.spike_neurons import SpikeNeuron
from mmtpspike.registry import register_hook
from .retention_schedule_hook import pruned_backbones


def _stage_of(name: str) -> str:
    """``'stages.2.blocks.0.attn.q_spike'`` -> ``'stage3'`` (1-based);
    neurons of the neck count as ``'neck'``."""
    parts = name.split('.')
    if parts[0] == 'neck':
        return 'neck'
    if 'stem' in parts:
        return 'stem'
    if 'stages' in parts:
        return f'stage{int(parts[parts.index("stages") + 1]) + 1}'
    return 'other'


class _Tally:
    """Running sums of keep ratios and spike counts."""

    def __init__(self) -> None:
        self.kept: Dict[str, float] = defaultdict(float)
        self.valid: Dict[str, float] = defaultdict(float)
        self.spikes: Dict[str, float] = defaultdict(float)
        self.neurons: Dict[str, float] = defaultdict(float)

    def keep_ratios(self) -> Dict[str, float]:
        return {k: self.kept[k] / max(self.valid[k], 1) for k in self.valid}

    def firing_rates(self) -> Dict[str, float]:
        return {k: self.spikes[k] / max(self.neurons[k], 1)
                for k in self.neurons}


@register_hook
class TokenStatsHook(Hook):
    """Log the realised keep ratio per block and spike firing rates.

    Keep ratio: kept valid tokens / valid tokens of each transformer block.
    Firing rate: mean spike output per neuron and timestep, in ``[0, 1]``
    (``s = n / D`` for multi-spike neurons), per stage and overall.

    Training: every ``interval`` iterations the averages since the last log
    go to the message hub (``train/tokens/keep_<block>``, ``train/spikes/
    rate_<stage>``), i.e. to the log line and every visualiser backend.
    Validation / test: averages over the whole loop are logged once at the
    end of the epoch and sent to the visualiser as scalars.

    Args:
        interval (int): Training log interval in iterations. Default: 50.
        firing_rates (bool): Also measure firing rates (forward hooks on all
            neurons). Default: True.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50, firing_rates: bool = True) -> None:
        self.interval = interval
        self.firing_rates = firing_rates
        self._tally = _Tally()
        self._handles: List = []

    def before_run(self, runner) -> None:
        backbones = pruned_backbones(runner)
        for backbone in backbones:
            self._handles.append(
                backbone.pruner.register_record_hook(self._on_record))
        if not self.firing_rates:
            return
        model = runner.model.module if hasattr(runner.model, 'module') else \
            runner.model
        for name, module in model.named_modules():
            if isinstance(module, SpikeNeuron):
                self._handles.append(
                    module.register_forward_hook(self._spike_counter(name)))

    def after_run(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _on_record(self, record) -> None:
        valid = record.valid
        self._tally.kept[record.block_name] += float(
            (record.kept & valid).sum())
        self._tally.valid[record.block_name] += float(valid.sum())

    def _spike_counter(self, name: str):
        stage = _stage_of(name)

        def hook(module, inputs, output) -> None:
            total = float(output.detach().sum())
            for key in (stage, 'all'):
                self._tally.spikes[key] += total
                self._tally.neurons[key] += output.numel()

        return hook

    def _summary(self) -> Dict[str, float]:
        stats = {f'tokens/keep_{k}': v
                 for k, v in self._tally.keep_ratios().items()}
        if stats:
            stats['tokens/keep_mean'] = sum(stats.values()) / len(stats)
        stats.update({f'spikes/rate_{k}': v
                      for k, v in self._tally.firing_rates().items()})
        self._tally = _Tally()
        return stats

    def before_train(self, runner) -> None:
        self._tally = _Tally()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval) and \
                not self.is_last_train_iter(runner):
            return
        for key, value in self._summary().items():
            runner.message_hub.update_scalar(f'train/{key}', value)

    def _log_loop(self, runner, mode: str) -> None:
        stats = self._summary()
        if not stats:
            return
        lines = [f'{key}: {value:.4f}' for key, value in stats.items()]
        runner.logger.info(f'{mode} token / spike statistics: ' +
                           ', '.join(lines))
        runner.visualizer.add_scalars(
            {f'{mode}/{key}': value for key, value in stats.items()},
            step=runner.iter)

    def before_val_epoch(self, runner) -> None:
        self._tally = _Tally()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._log_loop(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._tally = _Tally()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._log_loop(runner, 'test')
