"""Export a pruned SDT-V3 backbone to ONNX and / or torch.compile it, check
the outputs against eager mode and time all of them.

    python tools/analysis/export_backbone.py CONFIG_OR_ARCH \
        [--keep 0.5] [--shape 256 384] [--batch 1] \
        [--onnx sdtv3.onnx [--force]] [--compile] [--fuse] \
        [--dense-baseline] [--repeats 5] [--warmup 1] [--threads N] \
        [--checkpoint CKPT]

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

``--dense-baseline`` answers "which engine should I deploy the pruned
model with": the same backbone with ``pruning=None`` on the same weights
goes through the same engines (its ONNX file beside ``--onnx``, named
``*.dense.onnx``), all of them timed in the same interleaved rounds, and the
table gives the pruned model's speed-up over the dense one in each engine.
``--fuse`` folds BN and makes both channels-last first (``fuse()``), as
for fast eager inference.

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
    parser.add_argument('--fuse', action='store_true',
                        help='fuse() the backbone(s) first (BN folded, '
                        'channels-last)')
    parser.add_argument('--dense-baseline', action='store_true',
                        help='run the same network with pruning=None '
                        'through the same engines and compare')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    if not args.onnx and not args.compile:
        parser.error('nothing to do: pass --onnx PATH and / or --compile')
    for path in onnx_paths(args).values():
        if osp.exists(path) and not args.force:
            parser.error(f'{path} exists; pass --force to overwrite it')
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    return args


def onnx_paths(args) -> dict:
    """Where each model's ONNX file goes: ``{'pruned': PATH[, 'dense':
    stem.dense.onnx]}`` (empty without ``--onnx``)."""
    if not args.onnx:
        return {}
    paths = {'pruned': args.onnx}
    if args.dense_baseline:
        stem, ext = osp.splitext(args.onnx)
        paths['dense'] = f'{stem}.dense{ext or ".onnx"}'
    return paths


def build_backbone(config_or_arch: str, checkpoint, keep: float,
                   pruned: bool = True):
    """The backbone in eval mode (``pruned=False``: with ``pruning=None``)
    and its display name."""
    if config_or_arch in ARCHS:
        if checkpoint:
            raise SetupError('--checkpoint needs a config, not an arch')
        from mmtpspike.models import SDTV3
        torch.manual_seed(0)
        pruning = dict(keep_ratios=keep) if keep < 1 and pruned else None
        model = SDTV3(arch=config_or_arch, pruning=pruning, init_cfg=None)
        return model.eval(), f'SDT-V3-{config_or_arch.upper()}'
    if not osp.isfile(config_or_arch):
        raise SetupError(f'{config_or_arch!r} is neither an SDT-V3 arch '
                         f'{ARCHS} nor a config file')
    from mmtpspike.analysis.model_io import build_model
    options = None if pruned else {'model.backbone.pruning': None}
    model, _ = build_model(config_or_arch, checkpoint, options)
    backbone = model.backbone
    if pruned:
        backbone.set_keep_ratios(keep)
    return backbone.eval(), type(backbone).__name__


def build_models(args) -> tuple:
    """``{'pruned': backbone[, 'dense': the same weights unpruned]}``, the
    input and the display name; BN statistics calibrated on the input when
    there is no checkpoint, then fused if asked."""
    model, name = build_backbone(args.config_or_arch, args.checkpoint,
                                 args.keep)
    image = torch.randn(args.batch, 3, *args.shape,
                        generator=torch.Generator().manual_seed(1))
    if not args.checkpoint:
        with torch.no_grad(), calibrating_bn(model):
            model(image)
    models = {'pruned': model}
    if args.dense_baseline:
        dense, _ = build_backbone(args.config_or_arch, args.checkpoint,
                                  1.0, pruned=False)
        dense.load_state_dict(model.state_dict())
        models['dense'] = dense
    if args.fuse:
        for backbone in models.values():
            backbone.fuse()
        image = image.contiguous(memory_format=torch.channels_last)
    return models, image, name


def engines_of(args, label: str, model, image, notes: list) -> dict:
    """The runners of one model: eager, onnxruntime and / or compiled."""
    runners = {'eager': model}
    if args.onnx:
        path = onnx_paths(args)[label]
        start = time.perf_counter()
        try:
            export_onnx(model, (image, ), path)
        except ExportError as error:
            raise SetupError(str(error))
        notes.append(f'{label}: ONNX export {time.perf_counter() - start:.1f}'
                     f' s, {osp.getsize(path) / 2**20:.1f} MiB -> {path}')
        runners['onnxruntime'] = onnx_runner(onnx_session(path, args.threads))
    if args.compile:
        runners['torch.compile'] = compile_model(model)
        before = compiled_graphs()
        start = time.perf_counter()
        with torch.no_grad():
            runners['torch.compile'](image)
        graphs = compiled_graphs() - before
        notes.append(f'{label}: torch.compile first call '
                     f'{time.perf_counter() - start:.1f} s, {graphs} graphs '
                     f'({graphs - 1} graph breaks)')
    return runners


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    models, image, name = build_models(args)
    runners, diffs, notes = {}, {}, []
    for label, model in models.items():
        with torch.no_grad():
            reference = model(image)
        for engine, runner in engines_of(args, label, model, image,
                                         notes).items():
            runners[(label, engine)] = runner
            if engine != 'eager':
                with torch.no_grad():
                    diffs[(label, engine)] = max_abs_diff(runner(image),
                                                          reference)
    medians = time_interleaved(runners, (image, ), args.warmup, args.repeats)
    print_report(args, name, medians, diffs, notes)
    failed = [f'{engine} ({label})' for (label, engine), diff in diffs.items()
              if not diff <= args.tolerance]
    if failed:
        print(f'error: {", ".join(failed)} differ(s) from eager by more than '
              f'{args.tolerance:g}', file=sys.stderr)
        sys.exit(1)


def print_report(args, name, medians, diffs, notes) -> None:
    print(f'{name} backbone, keep {args.keep:g}, input {args.batch} x 3 x '
          f'{args.shape[0]} x {args.shape[1]}, cpu, {args.threads} threads'
          f'{", fuse()d" if args.fuse else ""}, median of {args.repeats} '
          f'interleaved rounds after {args.warmup} warm-up')
    for note in notes:
        print(note)
    engines = [engine for label, engine in medians if label == 'pruned']
    if not args.dense_baseline:
        print('| runtime | time (s) | speed-up vs eager | max abs diff vs '
              'eager |')
        print('|' + ' --- |' * 4)
        eager = medians[('pruned', 'eager')]
        for engine in engines:
            median = medians[('pruned', engine)]
            diff = diffs.get(('pruned', engine))
            print(f'| {engine} | {median:.4f} | {eager / median:.2f}x | '
                  f"{'-' if diff is None else f'{diff:.2e}'} |")
        return
    print('| engine | dense (s) | pruned (s) | pruned vs dense, same engine '
          '| pruned vs dense eager | max abs diff vs eager (dense / pruned) '
          '|')
    print('|' + ' --- |' * 6)
    dense_eager = medians[('dense', 'eager')]
    for engine in engines:
        dense, pruned = medians[('dense', engine)], medians[('pruned',
                                                             engine)]
        diff = '-' if engine == 'eager' else \
            f"{diffs[('dense', engine)]:.1e} / {diffs[('pruned', engine)]:.1e}"
        print(f'| {engine} | {dense:.4f} | {pruned:.4f} | '
              f'{dense / pruned:.2f}x | {dense_eager / pruned:.2f}x | '
              f'{diff} |')


if __name__ == '__main__':
    main()
