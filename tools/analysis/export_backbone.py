"""Export a pruned SDT-V3 backbone to ONNX and / or torch.compile it, check
the outputs against eager mode and time all of them.

    python tools/analysis/export_backbone.py CONFIG_OR_ARCH \
        [--keep 0.5] [--shape 256 384] [--batch 1] \
        [--onnx sdtv3.onnx [--force]] [--compile] \
        [--repeats 5] [--warmup 1] [--threads N] [--checkpoint CKPT]

``CONFIG_OR_ARCH`` is an SDT-V3 arch (``t``, ``s``, ``m``, ``l``; random
weights) or an mmdet / mmseg config whose backbone is prunable
(``--checkpoint`` loads its weights). Without a checkpoint the BN statistics
are first set from one forward of the input (see
:mod:`mmtpspike.analysis.bn_calibration`): an untrained backbone is silent
after a few layers and any runtime would "match" it.

``--onnx PATH`` exports the backbone (an existing file is kept unless
``--force``) and runs it with onnxruntime; ``--compile`` runs it through
``torch.compile`` (inductor). Both are checked against eager mode (max abs
difference over all output maps, at most ``--tolerance``; exit 1 if not),
then eager, onnxruntime and compiled forwards are timed interleaved (one of
each per round, median of ``--repeats``).

The ONNX graph is specialised to the input shape (batch included): the
token counts are constants. Padding-aware selection (image shapes) and
dynamic retention cannot be exported, see :mod:`mmtpspike.analysis.export`.
"""
import argparse
import os.path as osp
import sys
import time

import torch

from mmtpspike.analysis.bn_calibration import calibrating_bn
from mmtpspike.analysis.export import (ExportError, compile_model,
                                       compiled_graphs, export_onnx,
                                       max_abs_diff, onnx_runner,
                                       onnx_session, time_interleaved)
from mmtpspike.utils.config import SetupError
from mmtpspike.utils.launch import friendly_errors

ARCHS = ('t', 's', 'm', 'l')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config_or_arch', metavar='CONFIG_OR_ARCH',
                        help=f'SDT-V3 arch {ARCHS} or a config path')
    parser.add_argument('--checkpoint', help='weights of the config')
    parser.add_argument('--keep', type=float, default=0.5,
                        help='uniform keep ratio (1.0: dense)')
    parser.add_argument('--shape', type=int, nargs=2, default=[256, 384],
                        metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--onnx', metavar='PATH', help='write the ONNX model '
                        'here and run it with onnxruntime')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing --onnx file')
    parser.add_argument('--compile', action='store_true',
                        help='run torch.compile (inductor) too')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    if not args.onnx and not args.compile:
        parser.error('nothing to do: pass --onnx PATH and / or --compile')
    if args.onnx and osp.exists(args.onnx) and not args.force:
        parser.error(f'{args.onnx} exists; pass --force to overwrite it')
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    return args


def build_backbone(config_or_arch: str, checkpoint, keep: float):
    """The pruned backbone in eval mode and its display name."""
    if config_or_arch in ARCHS:
        if checkpoint:
            raise SetupError('--checkpoint needs a config, not an arch')
        from mmtpspike.models import SDTV3
        torch.manual_seed(0)
        pruning = dict(keep_ratios=keep) if keep < 1 else None
        model = SDTV3(arch=config_or_arch, pruning=pruning, init_cfg=None)
        return model.eval(), f'SDT-V3-{config_or_arch.upper()}'
    if not osp.isfile(config_or_arch):
        raise SetupError(f'{config_or_arch!r} is neither an SDT-V3 arch '
                         f'{ARCHS} nor a config file')
    from mmtpspike.analysis.model_io import build_model
    model, _ = build_model(config_or_arch, checkpoint)
    backbone = model.backbone
    backbone.set_keep_ratios(keep)
    return backbone.eval(), type(backbone).__name__


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, name = build_backbone(args.config_or_arch, args.checkpoint,
                                 args.keep)
    image = torch.randn(args.batch, 3, *args.shape,
                        generator=torch.Generator().manual_seed(1))
    if not args.checkpoint:
        with torch.no_grad(), calibrating_bn(model):
            model(image)
    with torch.no_grad():
        reference = model(image)
    runners, diffs, notes = {'eager': model}, {}, []
    if args.onnx:
        start = time.perf_counter()
        try:
            export_onnx(model, (image, ), args.onnx)
        except ExportError as error:
            raise SetupError(str(error))
        notes.append(f'ONNX export: {time.perf_counter() - start:.1f} s, '
                     f'{osp.getsize(args.onnx) / 2**20:.1f} MiB -> '
                     f'{args.onnx}')
        runners['onnxruntime'] = onnx_runner(
            onnx_session(args.onnx, args.threads))
    if args.compile:
        runners['torch.compile'] = compile_model(model)
        start = time.perf_counter()
        with torch.no_grad():
            runners['torch.compile'](image)
        graphs = compiled_graphs()
        notes.append(f'torch.compile first call: '
                     f'{time.perf_counter() - start:.1f} s, {graphs} graphs '
                     f'({graphs - 1} graph breaks)')
    with torch.no_grad():
        for runtime, runner in runners.items():
            if runtime != 'eager':
                diffs[runtime] = max_abs_diff(runner(image), reference)
    if args.compile:
        notes.append('recompiles in later calls: '
                     f'{compiled_graphs() - graphs}')
    medians = time_interleaved(runners, (image, ), args.warmup, args.repeats)
    print_report(args, name, medians, diffs, notes)
    failed = [r for r, d in diffs.items() if not d <= args.tolerance]
    if failed:
        print(f'error: {", ".join(failed)} differ(s) from eager by more than '
              f'{args.tolerance:g}', file=sys.stderr)
        sys.exit(1)


def print_report(args, name, medians, diffs, notes) -> None:
    print(f'{name} backbone, keep {args.keep:g}, input {args.batch} x 3 x '
          f'{args.shape[0]} x {args.shape[1]}, cpu, {args.threads} threads, '
          f'median of {args.repeats} interleaved rounds after {args.warmup} '
          'warm-up')
    for note in notes:
        print(note)
    print('| runtime | time (s) | speed-up vs eager | max abs diff vs eager |')
    print('|' + ' --- |' * 4)
    for runtime, median in medians.items():
        diff = f'{diffs[runtime]:.2e}' if runtime in diffs else '-'
        print(f'| {runtime} | {median:.4f} | '
              f"{medians['eager'] / median:.2f}x | {diff} |")


if __name__ == '__main__':
    main()
