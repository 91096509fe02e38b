"""Latency and peak memory of a config's backbone + neck, dense vs pruned.

    python tools/analysis/benchmark.py CONFIG [--keep 0.78 0.56]
        [--shape H W] [--repeats 10] [--warmup 2] [--device cpu|cuda]
        [--checkpoint CKPT] [--no-fuse] [--csv out.csv] [--cfg-options ...]

Each setting (dense = keep 1.0, then every ``--keep``) runs in its own
process, all within this one run: median forward latency after warm-up, peak
memory (CPU: peak resident memory growth, from a separate one-forward run
with exact (mmap) allocation; CUDA: peak allocated), the speed-up
over dense, and the ideal speed-up from the MACs actually run (convs,
attention matmuls and scorer; see tools/analysis/complexity.py). By default
the backbone is fused for inference (BN folded, channels-last).
"""
import argparse
import csv
import sys

import torch
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

from mmtpspike.analysis.benchmark import (EXACT_MEMORY_ENV, run_isolated,
                                          time_forward)
from mmtpspike.analysis.complexity import MacCounter
from mmtpspike.analysis.model_io import (DEFAULT_INPUT_SHAPES, BackboneNeck,
                                         build_model)
from mmtpspike.utils.launch import friendly_errors, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--keep', type=float, nargs='+', default=[0.78, 0.56])
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--checkpoint')
    parser.add_argument('--no-fuse', action='store_true',
                        help='keep BN layers and channels-first memory')
    parser.add_argument('--csv', help='also write the table as CSV')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def measure(config, checkpoint, cfg_options, keep, shape, warmup, repeats,
            device, fuse):
    """One setting, run inside a fresh process."""
    model, _ = build_model(config, checkpoint, cfg_options)
    model.backbone.set_keep_ratios(keep)
    net = BackboneNeck(model).eval().to(device)
    torch.manual_seed(0)
    image = torch.randn(1, 3, *shape, device=device)
    with torch.no_grad(), MacCounter(net) as counter:
        net(image)
    if fuse:
        model.backbone.fuse()
        image = image.contiguous(memory_format=torch.channels_last)
    result = time_forward(net, (image, ), warmup, repeats, device)
    del result['outputs']
    result['gmacs'] = counter.total / 1e9
    return result


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    shape = tuple(args.shape or DEFAULT_INPUT_SHAPES[cfg.default_scope])
    keeps = [1.0] + [k for k in args.keep if k != 1.0]
    progress = ProgressBar(len(keeps), file=sys.stderr)
    results = []
    for keep in keeps:
        common = (args.config, args.checkpoint, args.cfg_options, keep, shape)
        result = run_isolated(measure, *common, args.warmup, args.repeats,
                              args.device, not args.no_fuse)
        if args.device == 'cpu':
            result['peak_mib'] = run_isolated(
                measure, *common, 0, 1, args.device, not args.no_fuse,
                env=EXACT_MEMORY_ENV)['peak_mib']
        results.append(result)
        progress.update()
    print(file=sys.stderr)
    dense = results[0]
    rows = []
    for keep, res in zip(keeps, results):
        rows.append(dict(
            keep=keep, latency_ms=res['median'] * 1e3,
            peak_mem_mib=res['peak_mib'], gmacs=res['gmacs'],
            speedup=dense['median'] / res['median'],
            ideal_speedup=dense['gmacs'] / res['gmacs']))
    print(f"{args.config}: backbone + neck, input {shape[0]} x {shape[1]}, "
          f"{args.device}, {torch.get_num_threads()} threads, "
          f"{'fused' if not args.no_fuse else 'unfused'}, median of "
          f'{args.repeats} after {args.warmup} warm-up')
    print('| keep | latency (ms) | peak mem (MiB) | GMACs | speed-up | '
          'ideal speed-up | measured / ideal |')
    print('|' + ' --- |' * 7)
    for row in rows:
        print(f"| {row['keep']:.2f} | {row['latency_ms']:.1f} | "
              f"{row['peak_mem_mib']:.0f} | {row['gmacs']:.2f} | "
              f"{row['speedup']:.3f}x | {row['ideal_speedup']:.3f}x | "
              f"{row['speedup'] / row['ideal_speedup']:.0%} |")
    if args.csv:
        with open(args.csv, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == '__main__':
    main()
