"""Log realised keep ratios and spike firing rates."""
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from mmtpspike.models.layers.spike_neurons import SpikeNeuron
from mmtpspike.registry import register_hook
from .model_access import pruned_backbones, unwrap_model


def _stage_of(name: str) -> str:
    """``'backbone.stages.2.blocks.0.attn.q_spike'`` -> ``'stage3'``
    (1-based); neurons of the neck count as ``'neck'``."""
    parts = name.split('.')
    if parts[0] == 'neck':
        return 'neck'
    if 'stem' in parts:
        return 'stem'
    if 'stages' in parts:
        return f'stage{int(parts[parts.index("stages") + 1]) + 1}'
    return 'other'


class _DeviceTally:
    """Running sums kept as tensors on the model's device.

    Each statistic is a numerator / denominator pair; adding to it launches
    device work but never waits for it. :meth:`reduce` stacks every sum into
    one tensor, reduces it across ranks and copies it to the host once.
    """

    def __init__(self) -> None:
        self._sums: Dict[str, List[torch.Tensor]] = {}

    def add(self, key: str, numerator: torch.Tensor,
            denominator: torch.Tensor) -> None:
        pair = torch.stack([numerator.detach().double(),
                            denominator.detach().double()])
        if key in self._sums:
            self._sums[key][0] += pair
        else:
            self._sums[key] = [pair]

    def reduce(self) -> Dict[str, float]:
        """``numerator / denominator`` per key, summed over all ranks."""
        if not self._sums:
            return {}
        keys = sorted(self._sums)
        stacked = torch.stack([self._sums[k][0] for k in keys])
        all_reduce(stacked, op='sum')
        values = stacked.tolist()
        self._sums = {}
        return {k: num / max(den, 1.) for k, (num, den) in zip(keys, values)}


@register_hook
class TokenStatsHook(Hook):
    """Log the realised keep ratio per block and spike firing rates.

    Keep ratio: kept valid tokens / valid tokens of each transformer block.
    Firing rate: mean spike output per neuron and timestep, in ``[0, 1]``
    (``s = n / D`` for multi-spike neurons), per stage and overall.

    Statistics accumulate on the model's device without synchronising; once
    per logging interval (training) or loop (validation / test) they are
    summed over all ranks and copied to the host in one transfer, so a
    multi-GPU run logs the statistics of the whole batch, not of rank 0.

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
        self._tally = _DeviceTally()
        self._handles: List = []

    def before_run(self, runner) -> None:
        for backbone in pruned_backbones(runner):
            self._handles.append(
                backbone.pruner.register_record_hook(self._on_record))
        if not self.firing_rates:
            return
        for name, module in unwrap_model(runner).named_modules():
            if isinstance(module, SpikeNeuron):
                self._handles.append(
                    module.register_forward_hook(self._spike_counter(name)))

    def after_run(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _on_record(self, record) -> None:
        valid = record.valid
        self._tally.add(f'tokens/keep_{record.block_name}',
                        (record.kept & valid).sum(), valid.sum())

    def _spike_counter(self, name: str):
        keys = (f'spikes/rate_{_stage_of(name)}', 'spikes/rate_all')

        def hook(module, inputs, output) -> None:
            total = output.detach().sum()
            count = torch.tensor(float(output.numel()), device=output.device)
            for key in keys:
                self._tally.add(key, total, count)

        return hook

    def _summary(self) -> Dict[str, float]:
        stats = self._tally.reduce()
        keeps = [v for k, v in stats.items() if k.startswith('tokens/')]
        if keeps:
            stats['tokens/keep_mean'] = sum(keeps) / len(keeps)
        return stats

    def before_train(self, runner) -> None:
        self._tally = _DeviceTally()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
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
        self._tally = _DeviceTally()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._log_loop(runner, 'val')

    def before_test_epoch(self, runner) -> None:
        self._tally = _DeviceTally()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._log_loop(runner, 'test')
