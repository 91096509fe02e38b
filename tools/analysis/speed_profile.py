"""Where the time goes: a config's pruned backbone (+ neck) against the
same network dense, stage by stage.

    python tools/analysis/speed_profile.py configs/det/sdtv3_tp_fast_coco.py \
        [--shape 800 1216] [--with-neck] [--mode train] [--repeats 5] \
        [--conv-keep 0.56 [--conv-tile 8]] [--breakdown] \
        [--cfg-options model.backbone.pruning.keep_ratios=0.78]

Builds the config's model twice on the same random weights with realistic
BN statistics: as configured, and with ``model.backbone.pruning=None`` (the
dense baseline). For inference both backbones are ``fuse()``d (BN folded,
channels-last; the neck's BN folded too); ``--mode train`` times a
fine-tuning step (forward + backward, batch ``--batch``) of both in train
mode instead. Backbone (``--with-neck``: backbone + neck) of the two run
interleaved in this one process, one call of each per round, median over
rounds, so the ratio compares like with like; it is set against the ideal
speed-up from the MACs each really runs
(:class:`~mmtpspike.analysis.MacCounter`: convs, attention matmuls, scorer).
The per-stage table (median time of each stem / stage / neck call,
down-sampling included) shows which part falls short of its MAC share.

``--conv-keep`` / ``--conv-tile`` set ``pruning.conv_keep_ratios`` /
``pruning.conv_tile`` (conv-stage stopping, per token or per tile).
``--breakdown`` then profiles both models (``torch.profiler``, inference)
and prints, per stage, where the time goes: convs, gathers, scatters and
writes, copies, the SepConv mixers, spike neurons, token scoring and
selection (:mod:`mmtpspike.analysis.time_breakdown`); stages below 85 % of
their MAC ideal are marked.

``tools/analysis/benchmark.py`` measures latency and peak memory per keep
ratio in isolated processes; this tool compares one config with its dense
self, stage by stage, for inference and for training.
"""
import argparse
import statistics
import time
from collections import defaultdict
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.config import DictAction

from mmtpspike.analysis import count_macs
from mmtpspike.analysis.model_io import (DEFAULT_INPUT_SHAPES, BackboneNeck,
                                         build_model)
from mmtpspike.analysis.time_breakdown import stage_name, time_breakdown
from mmtpspike.models.layers.fusion import fuse_conv_bn
from mmtpspike.utils.config import SetupError
from mmtpspike.utils.launch import friendly_errors


def build_pair(config: str, cfg_options: Optional[dict], with_neck: bool):
    """The configured and the dense network on the same weights, and the
    loaded config."""
    pruned, cfg = build_model(config, None, cfg_options, with_pruning=False)
    if not cfg.model.backbone.get('pruning'):
        raise SetupError(f'{config} has no model.backbone.pruning; give a '
                         'pruned (TP) config')
    dense, _ = build_model(config, None,
                           dict(cfg_options or {},
                                **{'model.backbone.pruning': None}),
                           with_pruning=False)
    for module in pruned.modules():  # realistic, non-trivial BN statistics
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    dense.load_state_dict(pruned.state_dict())
    nets = []
    for model in (pruned, dense):
        if not with_neck:
            model.neck = None
        nets.append(BackboneNeck(model))
    return nets[0], nets[1], cfg


class StageTimer:
    """Wall time of each stage call of a backbone (``run_stage`` plus the
    stage's down-sampling) and of the neck, summed per forward."""

    def __init__(self, model: BackboneNeck) -> None:
        self.times: Dict[str, float] = defaultdict(float)
        self._handles = []
        backbone = model.backbone
        run_stage = backbone.run_stage

        def timed_run_stage(stage, x, state):
            start = time.perf_counter()
            out = run_stage(stage, x, state)
            self.times[stage_name(stage.name)] += time.perf_counter() - start
            return out

        backbone.run_stage = timed_run_stage
        for name, module in backbone.named_modules():
            if name.endswith('downsample'):
                self._time_module(module, stage_name(name))
        if model.neck is not None:
            self._time_module(model.neck, 'neck')

    def _time_module(self, module: nn.Module, key: str) -> None:
        starts: List[float] = []
        self._handles.append(module.register_forward_pre_hook(
            lambda mod, args: starts.append(time.perf_counter())))

        def stop(mod, args, out):
            self.times[key] += time.perf_counter() - starts.pop()

        self._handles.append(module.register_forward_hook(stop))

    def take(self) -> Dict[str, float]:
        times, self.times = dict(self.times), defaultdict(float)
        return times


def macs_by_stage(model: BackboneNeck, image: torch.Tensor) -> Dict:
    """All MACs of one forward and their split by stage (the scorers'
    under ``pruner``)."""
    counter = count_macs(model, image)
    stages: Dict[str, float] = defaultdict(float)
    for name, macs in counter.by_module.items():
        part, _, rest = name.partition('.')
        stages['neck' if part == 'neck' else stage_name(rest)] += macs
    return dict(total=counter.total, stages=dict(stages))


def run(model: nn.Module, image: torch.Tensor, train: bool):
    if not train:
        return model(image)
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        sum(o.float().mean() for o in model(image)).backward()


def benchmark(pruned: nn.Module, dense: nn.Module, image: torch.Tensor,
              train: bool, warmup: int, repeats: int):
    """Interleaved median times and per-stage times of both models."""
    models = dict(dense=dense, pruned=pruned)
    timers = {name: StageTimer(model) for name, model in models.items()}
    times = {name: [] for name in models}
    stages: Dict[str, Dict[str, List[float]]] = {
        name: defaultdict(list) for name in models}
    with torch.no_grad():
        for round_index in range(warmup + repeats):
            for name, model in models.items():
                start = time.perf_counter()
                run(model, image, train)
                elapsed = time.perf_counter() - start
                per_stage = timers[name].take()
                if round_index >= warmup:
                    times[name].append(elapsed)
                    for stage, seconds in per_stage.items():
                        stages[name][stage].append(seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    stage_medians = {
        name: {stage: statistics.median(t) for stage, t in per.items()}
        for name, per in stages.items()}
    return medians, stage_medians


def print_report(args, medians, stage_medians, macs) -> None:
    what = 'backbone + neck' if args.with_neck else 'backbone'
    mode = (f'fine-tuning step (forward + backward, train mode), batch '
            f'{args.batch}' if args.mode == 'train' else
            'inference, fuse()d, batch 1')
    options = ' '.join(f'{key}={value}' for key, value in
                       (args.cfg_options or {}).items())
    title = f'{args.config} {options}'.strip()
    print(f'{title}: {what}, {mode}, input {args.shape[0]} x '
          f'{args.shape[1]}, cpu, {torch.get_num_threads()} threads; the '
          f'same weights with pruning=None as the baseline, interleaved, '
          f'median of {args.repeats} rounds after {args.warmup} warm-up')
    speed = medians['dense'] / medians['pruned']
    ideal = macs['dense']['total'] / macs['pruned']['total']
    print('| model | time (s) | GMACs | speed-up vs dense | ideal (MACs) | '
          'measured / ideal |')
    print('|' + ' --- |' * 6)
    print(f"| dense | {medians['dense']:.3f} | "
          f"{macs['dense']['total'] / 1e9:.3f} | 1.00x | 1.00x | - |")
    print(f"| pruned | {medians['pruned']:.3f} | "
          f"{macs['pruned']['total'] / 1e9:.3f} | {speed:.2f}x | "
          f'{ideal:.2f}x | {speed / ideal:.0%} |')
    print()
    print('Per stage (median time of its calls in one forward, '
          'down-sampling included; MACs of the forward):')
    print('| stage | dense (s) | pruned (s) | speed-up | dense GMACs | '
          'pruned GMACs | ideal |')
    print('|' + ' --- |' * 7)
    stages = list(stage_medians['dense']) + [
        stage for stage in macs['pruned']['stages']
        if stage not in stage_medians['dense']]
    for stage in stages:
        dense_time = stage_medians['dense'].get(stage)
        pruned_time = stage_medians['pruned'].get(stage)
        dense_macs = macs['dense']['stages'].get(stage, 0)
        pruned_macs = macs['pruned']['stages'].get(stage, 0)
        ideal_stage = dense_macs / pruned_macs if pruned_macs else 1.0
        timed = stage in stage_medians['dense']
        times = (f'{dense_time:.3f} | {pruned_time:.3f} | '
                 f'{dense_time / pruned_time:.2f}x' if timed else
                 '- | - | -')
        print(f'| {stage} | {times} | {dense_macs / 1e9:.2f} | '
              f'{pruned_macs / 1e9:.2f} | '
              f"{f'{ideal_stage:.2f}x' if timed else '-'} |")
    if args.mode == 'train':
        print('(train mode: stage times cover the forward only; the '
              'backward runs outside them)')


#: a stage below this share of its MAC ideal gets a marked breakdown
TARGET_SHARE = 0.85


def print_breakdown(breakdowns, stage_medians, macs) -> None:
    """Per stage and part, ms per forward of both models (profiled)."""
    print()
    print('Where the time goes (torch.profiler, ms per forward; parts: the '
          'SepConv mixers, spike neurons, token scoring and selection, '
          'other ops by kind; * = stage below '
          f'{TARGET_SHARE:.0%} of its MAC ideal):')
    print('| stage | part | dense (ms) | pruned (ms) |')
    print('|' + ' --- |' * 4)
    for stage, dense_time in stage_medians['dense'].items():
        pruned_macs = macs['pruned']['stages'].get(stage, 0)
        ideal = macs['dense']['stages'].get(stage, 0) / pruned_macs \
            if pruned_macs else 1.0
        speed = dense_time / stage_medians['pruned'][stage]
        label = stage + (' *' if speed < TARGET_SHARE * ideal else '')
        dense, pruned = (breakdowns[name].get(stage, {})
                         for name in ('dense', 'pruned'))
        parts = sorted(set(dense) | set(pruned),
                       key=lambda part: -pruned.get(part, 0))
        for part in parts:
            print(f'| {label} | {part} | {dense.get(part, 0):.1f} | '
                  f'{pruned.get(part, 0):.1f} |')


@friendly_errors
def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a config with model.backbone.pruning')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: 800 x 1216 for mmdet '
                        'configs, 512 x 512 for mmseg)')
    parser.add_argument('--with-neck', action='store_true',
                        help="also run the config's neck (e.g. SpikeFPN)")
    parser.add_argument('--mode', choices=['inference', 'train'],
                        default='inference')
    parser.add_argument('--batch', type=int, default=2,
                        help='batch size of --mode train')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--conv-keep', type=float, metavar='RATIO',
                        help='pruning.conv_keep_ratios: stop tokens in the '
                        'conv stages too')
    parser.add_argument('--conv-tile', type=int, metavar='T',
                        help='pruning.conv_tile: stop whole T x T tiles in '
                        'the conv stages (needs conv_keep_ratios)')
    parser.add_argument('--breakdown', action='store_true',
                        help='profile where each stage spends its time '
                        '(inference)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. '
                        'model.backbone.pruning.keep_ratios=0.78')
    args = parser.parse_args(argv)
    if args.breakdown and args.mode == 'train':
        parser.error('--breakdown profiles inference; leave out --mode train')
    torch.set_num_threads(args.threads)
    args.cfg_options = dict(args.cfg_options or {})
    for option, key in (('conv_keep', 'conv_keep_ratios'),
                        ('conv_tile', 'conv_tile')):
        if getattr(args, option) is not None:
            args.cfg_options[f'model.backbone.pruning.{key}'] = \
                getattr(args, option)
    try:
        pruned, dense, cfg = build_pair(args.config, args.cfg_options,
                                        args.with_neck)
    except ValueError as err:  # e.g. pruning options that do not fit
        raise SetupError(str(err)) from err
    shape = tuple(args.shape or DEFAULT_INPUT_SHAPES[cfg.default_scope])
    args.shape = shape
    batch = args.batch if args.mode == 'train' else 1
    torch.manual_seed(1)
    image = torch.randn(batch, 3, *shape)
    macs = {name: macs_by_stage(model, image[:1])
            for name, model in (('dense', dense), ('pruned', pruned))}
    if args.mode == 'train':
        pruned.train()
        dense.train()
    else:
        for model in (pruned, dense):
            model.backbone.fuse()
            if model.neck is not None:
                fuse_conv_bn(model.neck)
                model.neck.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    medians, stage_medians = benchmark(pruned, dense, image,
                                       args.mode == 'train', args.warmup,
                                       args.repeats)
    print_report(args, medians, stage_medians, macs)
    if args.breakdown:
        breakdowns = {name: time_breakdown(model.backbone,
                                           lambda model=model: model(image))
                      for name, model in (('dense', dense),
                                          ('pruned', pruned))}
        print_breakdown(breakdowns, stage_medians, macs)


if __name__ == '__main__':
    main()
