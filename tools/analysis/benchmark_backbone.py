"""Dense vs pruned, ours vs the public code: SDT-V3 backbone speed.

    python tools/analysis/benchmark_backbone.py --public-code PATH \
        [--arch l] [--shape 800 1216] [--keep 0.78 0.56] [--repeats 5]

With ``--public-code`` (a copy of the public TP-Spikformer repository, or its
``sdtv3_drop/models_drop.py``; never shipped, it needs timm, einops and
torchinfo on the path) the public SDT-V3 code itself runs on our weights,
interleaved with ours in one process (one forward of each setting per round,
median over rounds): public dense, public TP at its default ratios and at
each ``--keep`` (its ``k * k`` token count matched to ours), ours dense
unfused and ``fuse()``d, ours pruned ``fuse()``d.

Without ``--public-code`` the tool times a *re-implementation* of the public
computation (below), not the public code, and says so in its output.

Every setting runs in its own process (peak memory is its own; on CPU it is
measured in a second one-forward run with exact mmap allocation, see
:mod:`mmtpspike.analysis.benchmark`), all in this one run, so the printed
ratios compare like with like:

* ``public``: the computation of the public SDT-V3 code, ``(q k^T) v``
  attention and separate BN layers (``attention_order='quadratic'``);
  pruned rows use the public scorer (``variant='reference'``) and its
  ``(q k^T) v`` on the kept tokens.
* ``linear``: ``q (k^T v)`` attention, BN separate.
* ``ours``: ``q (k^T v)``, BN folded into the convs, channels-last
  (``SDTV3.fuse()``), the inference path of this package.

MACs come from :class:`mmtpspike.analysis.MacCounter` (convs, attention
matmuls and the scorer, as the model really runs); the ideal speed-up of a
pruned row is dense MACs / pruned MACs, and "measured / ideal" divides the
measured speed-up over ours-dense by it (target: >= 90 %).

``--mode train`` instead times one fine-tuning step (forward + backward of
the backbone in train mode, batch ``--batch``) dense vs each ``--keep`` and
reports time per iteration and peak memory as ratios to dense. It takes any
prunable backbone: ``--backbone QKFormer --arch 10-384 --timesteps 4``
(default: ``SDTV3``, arch ``l``)::

    python tools/analysis/benchmark_backbone.py --mode train \
        --backbone Spikformer --arch 8-384 --shape 512 512 --keep 0.5
"""
import argparse
import math
import sys

import torch

from mmtpspike.analysis import block_macs, count_macs
from mmtpspike.analysis.benchmark import (EXACT_MEMORY_ENV, run_isolated,
                                          time_forward)

#: the public code's default per-block side ratios (``k_values``)
PUBLIC_K_VALUES = [0.9, 0.8, 0.8, 0.8, 0.75, 0.65, 0.65, 0.65]
SETTINGS = {
    'public': dict(attention_order='quadratic', fuse=False),
    'linear': dict(attention_order='linear', fuse=False),
    'ours': dict(attention_order='linear', fuse=True),
}


def build(arch: str, attention_order: str, fuse: bool, keep: float):
    from mmtpspike.models import SDTV3
    torch.manual_seed(0)
    variant = 'reference' if attention_order == 'quadratic' else 'paper'
    pruning = None if keep >= 1 else dict(
        keep_ratios=keep, scorer=dict(type='IRToPScorer', variant=variant))
    model = SDTV3(arch=arch, attention_order=attention_order,
                  pruning=pruning).eval()
    for module in model.modules():  # realistic, non-trivial BN statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.fuse() if fuse else model


def measure(arch, setting, keep, shape, warmup, repeats, device, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    image = torch.randn(1, 3, *shape)
    model = build(arch, keep=keep, **SETTINGS[setting]).to(device)
    macs = count_macs(model, image.to(device))
    if setting == 'ours':
        image = image.contiguous(memory_format=torch.channels_last)
    result = time_forward(model, (image.to(device), ), warmup, repeats,
                          device)
    result['outputs'] = [o.float().cpu().contiguous()
                         for o in result['outputs']]
    result['macs'] = macs.total
    result['scorer_macs'] = macs.total_of('scorer')
    result['block_macs'] = block_macs(macs, 'stages.2.blocks.0')
    return result


def train_step(model, image):
    """One forward + backward of the backbone (a stand-in loss)."""
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        sum(o.float().mean() for o in model(image)).backward()


def build_any(backbone: str, arch: str, timesteps, keep: float):
    """A registered prunable backbone at ``keep`` (IRToP), or dense."""
    import mmtpspike.models  # noqa: F401 (registers the backbones)
    from mmengine.registry import MODELS
    cls = MODELS.get(backbone)
    if cls is None:
        raise SystemExit(f'error: unknown --backbone {backbone!r}')
    kwargs = dict(arch=arch, init_cfg=None)
    if timesteps:
        kwargs['num_timesteps'] = timesteps
    if keep < 1:
        kwargs['pruning'] = dict(keep_ratios=keep)
    torch.manual_seed(0)
    return cls(**kwargs)


def measure_train(backbone, arch, timesteps, keep, shape, batch, warmup,
                  repeats, device, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    image = torch.randn(batch, 3, *shape, device=device)
    if backbone == 'SDTV3':
        model = build(arch, 'linear', False, keep)
    else:
        model = build_any(backbone, arch, timesteps, keep)
    model = model.to(device).train()
    result = time_forward(lambda x: train_step(model, x), (image, ), warmup,
                          repeats, device)
    del result['outputs']
    return result


def main_train(args):
    keeps = [1.0] + [k for k in args.keep if k != 1.0]
    results = []
    for keep in keeps:
        print(f'measuring train step keep={keep} ...', file=sys.stderr)
        common = (args.backbone, args.arch, args.timesteps, keep,
                  tuple(args.shape), args.batch)
        result = run_isolated(measure_train, *common, args.warmup,
                              args.repeats, args.device, args.threads)
        if args.device == 'cpu':
            result['peak_mib'] = run_isolated(
                measure_train, *common, 0, 1, args.device, args.threads,
                env=EXACT_MEMORY_ENV)['peak_mib']
        results.append(result)
    dense = results[0]
    steps = f', T={args.timesteps}' if args.timesteps else ''
    print(f'{args.backbone} {args.arch}{steps} fine-tuning step (forward + '
          f'backward), batch {args.batch} x {args.shape[0]} x '
          f'{args.shape[1]}, {args.device}, {args.threads} threads, median '
          f'of {args.repeats}')
    print('| keep | time / iter (s) | peak mem (MiB) | time vs dense | '
          'peak mem vs dense |')
    print('|' + ' --- |' * 5)
    for keep, res in zip(keeps, results):
        print(f"| {keep:.2f} | {res['median']:.3f} | {res['peak_mib']:.0f} | "
              f"{res['median'] / dense['median']:.3f} | "
              f"{res['peak_mib'] / dense['peak_mib']:.3f} |")


def main_public_code(args):
    """Time the public code and ours on the same weights, interleaved."""
    import statistics
    import time

    from mmtpspike.analysis.public_sdtv3 import (build_public_sdtv3,
                                                 load_public_module,
                                                 public_k_value)
    from mmtpspike.utils.config import SetupError
    torch.set_num_threads(args.threads)
    try:
        module = load_public_module(args.public_code)
    except SetupError as error:
        raise SystemExit(f'error: {error}')
    torch.manual_seed(1)
    image = torch.randn(1, 3, *args.shape)
    dense = build(args.arch, 'linear', False, 1.0)
    height, width = (math.ceil(s / 16) for s in args.shape)
    settings = {'public dense': (build_public_sdtv3(
        module, args.arch, [1.0] * 8, dense, dense=True), image, None)}
    default_public = build_public_sdtv3(module, args.arch, PUBLIC_K_VALUES,
                                        dense)
    settings['public TP (its ratios)'] = (default_public, image, None)
    for keep in args.keep:
        settings[f'public {keep:.2f}'] = (build_public_sdtv3(
            module, args.arch, [public_k_value(keep, height, width)] * 8,
            dense), image, keep)
    settings['ours dense'] = (dense, image, 1.0)
    fused_image = image.contiguous(memory_format=torch.channels_last)
    settings['ours dense fuse()'] = (
        build(args.arch, 'linear', True, 1.0), fused_image, 1.0)
    for keep in args.keep:
        settings[f'ours {keep:.2f} fuse()'] = (
            build(args.arch, 'linear', True, keep), fused_image, keep)

    def forward(model, x):
        run = getattr(model, 'forward_features', None)
        return run(x) if run is not None else model(x)[-1]

    times = {name: [] for name in settings}
    outputs = {}
    with torch.no_grad():
        for round_index in range(args.warmup + args.repeats):
            for name, (model, x, _) in settings.items():
                start = time.perf_counter()
                outputs[name] = forward(model, x)
                if round_index >= args.warmup:
                    times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    public, ours = median['public dense'], median['ours dense fuse()']
    print(f'SDT-V3-{args.arch.upper()} backbone, input {args.shape[0]} x '
          f'{args.shape[1]}, cpu, {args.threads} threads; the public code '
          f'({args.public_code}) and ours on the same weights, interleaved, '
          f'median of {args.repeats} rounds after {args.warmup} warm-up')
    print('| setting | tokens kept | time (s) | vs public dense | '
          'vs ours dense fuse() |')
    print('|' + ' --- |' * 5)
    for name, (_, _, keep) in settings.items():
        kept = public_kept_share(settings[name][0], height, width) \
            if name.startswith('public') else keep
        print(f'| {name} | {kept:.2f} | {median[name]:.3f} | '
              f'{public / median[name]:.2f}x | {ours / median[name]:.2f}x |')
    difference = (outputs['public dense'] -
                  outputs['ours dense fuse()'].contiguous()).abs().max()
    print(f'max |public dense - ours dense fuse()| on the last map: '
          f'{float(difference):.2e}')


def public_kept_share(model, height: int, width: int) -> float:
    """Mean share of tokens the public blocks keep at a ``height x width``
    token grid (1.0 for the dense public model)."""
    blocks = list(model.block3) + list(model.block4)
    if 'forward' in vars(blocks[0]):  # dense: forward replaced
        return 1.0
    shares = [int(height * b.k_value)**2 / (height * width) for b in blocks]
    return sum(shares) / len(shares)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backbone', default='SDTV3',
                        help='registered prunable backbone (--mode train)')
    parser.add_argument('--arch', default='l')
    parser.add_argument('--timesteps', type=int,
                        help='T of the backbone (--mode train; default: the '
                        "backbone's own)")
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216])
    parser.add_argument('--keep', type=float, nargs='+', default=[0.78, 0.56])
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--mode', choices=['inference', 'train'],
                        default='inference')
    parser.add_argument('--batch', type=int, default=2,
                        help='batch size of --mode train')
    parser.add_argument('--public-code', metavar='PATH',
                        help='time the public TP-Spikformer SDT-V3 code '
                        '(a copy of its repository or models_drop.py) '
                        'against ours, interleaved in one process')
    args = parser.parse_args(argv)
    if args.public_code:
        return main_public_code(args)
    if args.mode == 'train':
        return main_train(args)
    if args.backbone != 'SDTV3':
        parser.error('--mode inference compares SDTV3 with the public SDT-V3 '
                     'computation; use --mode train for other backbones')

    rows = [('public', 1.0), ('linear', 1.0), ('ours', 1.0)]
    for keep in args.keep:
        rows += [('public', keep), ('ours', keep)]
    results = {}
    for setting, keep in rows:
        print(f'measuring {setting} keep={keep} ...', file=sys.stderr)
        common = (args.arch, setting, keep, tuple(args.shape))
        result = run_isolated(measure, *common, args.warmup, args.repeats,
                              args.device, args.threads)
        if args.device == 'cpu':
            result['peak_mib'] = run_isolated(
                measure, *common, 0, 1, args.device, args.threads,
                env=EXACT_MEMORY_ENV)['peak_mib']
        results[setting, keep] = result

    public, ours = results['public', 1.0], results['ours', 1.0]
    print('Note: "public" rows time this package\'s re-implementation of the '
          'public computation, not the public code; pass --public-code PATH '
          'to time the public code itself.')
    print(f'SDT-V3-{args.arch.upper()} backbone, input {args.shape[0]} x '
          f'{args.shape[1]}, {args.device}, {args.threads} threads, median of '
          f'{args.repeats} forwards after {args.warmup} warm-up')
    header = ('| setting | keep | time (s) | peak mem (MiB) | GMACs | '
              'vs public dense | vs public same keep | vs ours dense | '
              'ideal vs ours dense | measured / ideal |')
    print(header)
    print('|' + ' --- |' * 10)
    for (setting, keep), res in results.items():
        same_public = results.get(('public', keep), public)
        speed_ours = ours['median'] / res['median']
        ideal = ours['macs'] / res['macs']
        cells = [
            setting, f'{keep:.2f}', f"{res['median']:.3f}",
            f"{res['peak_mib']:.0f}", f"{res['macs'] / 1e9:.1f}",
            f"{public['median'] / res['median']:.2f}x",
            f"{same_public['median'] / res['median']:.2f}x",
            f'{speed_ours:.2f}x', f'{ideal:.3f}x',
            f'{speed_ours / ideal:.0%}' if keep < 1 and
            setting == 'ours' else '-'
        ]
        print('| ' + ' | '.join(cells) + ' |')
    diffs = [float((a - b).abs().max())
             for a, b in zip(public['outputs'], ours['outputs'])]
    print('max |public dense - ours dense| per output: '
          + ', '.join(f'{d:.2e}' for d in diffs))
    for keep in args.keep:
        res = results['ours', keep]
        print(f'scorer MACs at keep {keep}: {res["scorer_macs"] / 8 / 1e6:.1f}M'
              f' per block = {res["scorer_macs"] / 8 / ours["block_macs"]:.2%}'
              f' of a dense stage-3 block')


if __name__ == '__main__':
    main()
