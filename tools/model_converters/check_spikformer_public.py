"""Check that our Spikformer computes what the public definition computes.

    python tools/model_converters/check_spikformer_public.py \\
        --public-code PATH/TO/spikformer [--embed-dims 64] [--depth 2]
        [--num-heads 8] [--size 64 96] [--batch 2] [--seed 0]
        [--tolerance 1e-5]

``--public-code`` is your copy of github.com/ZK-Zhou/spikformer (the
repository root or its ``imagenet`` folder; nothing of it is shipped here).
Its ``imagenet/model.py`` needs timm (``timm.models.layers``, 0.5 - 0.9),
and the old spikingjelly API (``spikingjelly.clock_driven``, 0.0.0.0.12 -
0.0.0.0.14); cupy is not needed, since its LIF neurons are switched to the
torch backend here. With this repository's classic stack, for example::

    .venv-classic/bin/python -m pip install --no-deps --target /tmp/pubdeps \\
        timm==0.6.12 einops
    PYTHONPATH=/tmp/pubdeps .venv-classic/bin/python \\
        tools/model_converters/check_spikformer_public.py --public-code DIR

The script builds the public model at a small size with random weights,
gives every BN layer random affine parameters and running statistics
calibrated on the input (so that the neurons of every block fire), converts
the public state dict with :func:`convert_public_keys`, loads it into our
backbone (no missing or unexpected key allowed) and runs the same images in
eval mode with the public forward's ``T = 4``. It prints the max abs
difference of the last block's token features (mean over ``T``), of the
class logits (our features, pooled, through the public head) and of our
pruned backbone at keep 1.0, and exits with 1 when one exceeds
``--tolerance``.
"""
import argparse
import importlib.util
import os.path as osp
import sys
from functools import partial

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

PUBLIC_TIMESTEPS = 4  # fixed in the public forward


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--public-code', required=True,
                        help='the public repository (root or imagenet/)')
    parser.add_argument('--embed-dims', type=int, default=64)
    parser.add_argument('--depth', type=int, default=2)
    parser.add_argument('--num-heads', type=int, default=8)
    parser.add_argument('--size', type=int, nargs=2, default=[64, 96],
                        metavar=('H', 'W'),
                        help='input size, multiples of 16 (the public SPS '
                        'needs them)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tolerance', type=float, default=1e-5)
    return parser.parse_args()


def import_public_model(public_code: str):
    """Import the public ``imagenet/model.py`` with torch-backend LIFs."""
    candidates = [osp.join(public_code, 'imagenet', 'model.py'),
                  osp.join(public_code, 'model.py')]
    path = next((p for p in candidates if osp.isfile(p)), None)
    if path is None:
        sys.exit(f'--public-code {public_code}: no imagenet/model.py or '
                 f'model.py there; point it at your copy of '
                 f'github.com/ZK-Zhou/spikformer')
    try:
        from spikingjelly.clock_driven import functional, neuron
        import timm  # noqa: F401
    except ImportError as err:
        sys.exit(f'the public model needs timm and spikingjelly '
                 f'0.0.0.0.12 - 0.0.0.0.14 (spikingjelly.clock_driven): '
                 f'{err}. See this script\'s docstring.')

    class TorchBackendLIF(neuron.MultiStepLIFNode):
        """The public neuron on the torch backend (no cupy, runs on CPU)."""

        def __init__(self, *args, backend='torch', **kwargs):
            super().__init__(*args, backend='torch', **kwargs)

    neuron.MultiStepLIFNode = TorchBackendLIF
    spec = importlib.util.spec_from_file_location('spikformer_public', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # timm's register_model looks it up
    spec.loader.exec_module(module)
    return module, functional


@torch.no_grad()
def activate(model: nn.Module, run, generator: torch.Generator) -> None:
    """Random BN affine parameters around the firing threshold and running
    statistics from one train-mode pass of ``run``."""
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for norm in norms:
        norm.weight.copy_(0.6 + 0.6 * torch.rand(norm.weight.shape,
                                                 generator=generator))
        norm.bias.copy_(0.2 + 0.8 * torch.rand(norm.bias.shape,
                                               generator=generator))
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    run()
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def main():
    args = parse_args()
    if any(s % 16 for s in args.size):
        sys.exit(f'--size {args.size}: the public SPS needs multiples of 16')
    public_module, functional = import_public_model(args.public_code)
    from mmtpspike.models.backbones import Spikformer
    from mmtpspike.models.backbones.spikformer_checkpoint import \
        load_spikformer_checkpoint

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    height, width = args.size
    public = public_module.Spikformer(
        img_size_h=height, img_size_w=width, patch_size=16,
        embed_dims=args.embed_dims, num_heads=args.num_heads, mlp_ratios=4,
        in_channels=3, num_classes=1000, qkv_bias=False,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), depths=args.depth,
        sr_ratios=1)
    images = torch.rand(args.batch, 3, height, width, generator=generator)
    images = (images - 0.45) / 0.226  # ImageNet-normalised range

    def run_public():
        functional.reset_net(public)
        return public(images)

    activate(public, run_public, generator)
    captured = {}
    last = public.block[-1]
    for name, module in (('block', last), ('attn', last.attn),
                         ('mlp', last.mlp)):
        module.register_forward_hook(
            lambda module, inputs, output, name=name: captured.update(
                {name: output[0] if isinstance(output, tuple) else output}))
    with torch.no_grad():
        public_logits = run_public()
    public_tokens = captured['block'].mean(0)  # [B, C, H, W], mean over T

    common = dict(embed_dims=args.embed_dims, depth=args.depth,
                  num_heads=args.num_heads, num_timesteps=PUBLIC_TIMESTEPS)
    ours = Spikformer(**common).eval()
    pruned = Spikformer(**common, pruning=dict(keep_ratios=1.0)).eval()
    report = load_spikformer_checkpoint(ours, public.state_dict())
    if report['missing'] or report['unexpected']:
        sys.exit(f'conversion left missing keys {report["missing"]} / '
                 f'unexpected keys {report["unexpected"]}')
    pruned.load_state_dict(ours.state_dict())
    with torch.no_grad():
        our_tokens, = ours(images)
        pruned_tokens, = pruned(images)
        our_logits = public.head(our_tokens.flatten(2).mean(2))

    print(f'Spikformer-{args.depth}-{args.embed_dims}, {args.num_heads} '
          f'heads, T={PUBLIC_TIMESTEPS}, input {args.batch}x3x{height}x'
          f'{width}; {len(report["renamed"])} keys renamed, '
          f'{len(report["reshaped"])} kernels flattened, dropped '
          f'{len(report["dropped"])} unused keys')
    print(f'last block firing rates: attention '
          f'{float(captured["attn"].mean()):.3f}, MLP '
          f'{float(captured["mlp"].mean()):.3f}; token features mean '
          f'{float(public_tokens.mean()):.3f}')
    results = {
        'token features (last block, mean over T)':
        max_diff(public_tokens, our_tokens),
        'class logits': max_diff(public_logits, our_logits),
        'pruned backbone at keep 1.0 vs public':
        max_diff(public_tokens, pruned_tokens),
    }
    for name, value in results.items():
        print(f'max abs difference, {name}: {value:.3g}')
    if max(results.values()) > args.tolerance:
        sys.exit(f'FAILED: a difference exceeds --tolerance '
                 f'{args.tolerance}')
    print('OK: our Spikformer matches the public definition')


if __name__ == '__main__':
    main()
