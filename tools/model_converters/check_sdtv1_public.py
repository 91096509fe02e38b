"""Check SDTV1 against the public Spike-driven Transformer (V1) code.

Builds the public ImageNet model (``model/spikeformer.py`` and ``module/`` of
github.com/BICLab/Spike-Driven-Transformer, from the user's own copy; never
shipped here) and SDTV1 at a small size, gives the public model random BN
affine parameters and BN statistics calibrated on the input (so that every
layer fires), loads its state dict into SDTV1 through the key converter, runs
the same images through both in eval mode and prints the max abs difference
of the final token features (per timestep, and averaged over timesteps as
SDTV1 returns them).

The public code needs what it imports: spikingjelly 0.0.0.0.14 (its
``spikingjelly.clock_driven`` API), timm (0.6.x) and einops. The public LIF
neurons ask for the cupy backend; this script switches them to spikingjelly's
torch backend so they run on the CPU. With the repository's classic stack::

    pip install --target /tmp/pubdeps timm==0.6.12 einops --no-deps
    PYTHONPATH=/tmp/pubdeps .venv-classic/bin/python \\
        tools/model_converters/check_sdtv1_public.py \\
        --public-code /path/to/Spike-Driven-Transformer
"""
import argparse
import functools
import os.path as osp
import sys
from typing import Dict

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--public-code', required=True,
                        help='checkout of BICLab/Spike-Driven-Transformer '
                        '(the folder holding model/ and module/)')
    parser.add_argument('--embed-dims', type=int, default=64)
    parser.add_argument('--depth', type=int, default=2)
    parser.add_argument('--timesteps', type=int, default=2)
    parser.add_argument('--size', type=int, nargs=2, default=(64, 96),
                        metavar=('H', 'W'),
                        help='image size, multiples of 16 (the public code '
                        'needs them)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--dtype', choices=('float32', 'float64'),
                        default='float32')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='largest accepted difference (exit code 1 '
                        'above it)')
    return parser.parse_args()


def use_torch_lif_backend() -> None:
    """Make the public ``MultiStep*LIFNode(backend='cupy')`` use the torch
    backend (CPU), before the public modules import them."""
    from spikingjelly.clock_driven import neuron
    for cls in (neuron.MultiStepLIFNode, neuron.MultiStepParametricLIFNode):
        original = cls.__init__

        @functools.wraps(original)
        def init(self, *args, _original=original, **kwargs):
            kwargs['backend'] = 'torch'
            _original(self, *args, **kwargs)

        cls.__init__ = init


def build_public(args: argparse.Namespace) -> nn.Module:
    """The public ``SpikeDrivenTransformer`` at the requested size."""
    folder = osp.abspath(args.public_code)
    if not osp.isfile(osp.join(folder, 'model', 'spikeformer.py')):
        raise FileNotFoundError(
            f'{folder} has no model/spikeformer.py; pass the root of a '
            'checkout of github.com/BICLab/Spike-Driven-Transformer')
    use_torch_lif_backend()
    sys.path.insert(0, folder)
    from model.spikeformer import SpikeDrivenTransformer
    height, width = args.size
    return SpikeDrivenTransformer(
        img_size_h=height, img_size_w=width, patch_size=16, in_channels=3,
        num_classes=10, embed_dims=args.embed_dims, num_heads=8,
        mlp_ratios=4, depths=args.depth, T=args.timesteps,
        spike_mode='lif')


def public_features(model: nn.Module, images: torch.Tensor,
                    num_timesteps: int) -> torch.Tensor:
    """Final block output of the public model: ``[T, B, C, h, w]``."""
    from spikingjelly.clock_driven import functional
    functional.reset_net(model)
    x = images.unsqueeze(0).repeat(num_timesteps, 1, 1, 1, 1)
    x, _, _ = model.patch_embed(x)
    for block in model.block:
        x, _, _ = block(x)
    functional.reset_net(model)
    return x


def our_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Final block output of SDTV1 before the timestep mean: ``[T, B, C, h,
    w]``."""
    x = model.patch_embed(model.to_timesteps(images))
    for block in model.blocks:
        x = block(x)
    return x.view(model.num_timesteps, -1, *x.shape[1:])


@torch.no_grad()
def randomise_bn(model: nn.Module, images: torch.Tensor,
                 num_timesteps: int, seed: int) -> None:
    """Random BN affine parameters; running statistics from one train-mode
    forward of ``images``, so every layer fires."""
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for norm in norms:
        shape = norm.weight.shape
        norm.weight.copy_(0.6 + 0.6 * torch.rand(shape, generator=generator))
        norm.bias.copy_(0.2 + 0.8 * torch.rand(shape, generator=generator))
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    public_features(model, images, num_timesteps)
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def firing_rates(model: nn.Module, images: torch.Tensor) -> Dict[str, float]:
    """Mean spike value of SDTV1's neurons, grouped by module kind."""
    from mmtpspike.models.layers.spike_neurons import SpikeNeuron
    sums: Dict[str, list] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, SpikeNeuron):
            kind = name.split('.')[-1]

            def hook(mod, inputs, out, kind=kind):
                entry = sums.setdefault(kind, [0., 0])
                entry[0] += float(out.sum())
                entry[1] += out.numel()

            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(images)
    for handle in handles:
        handle.remove()
    return {kind: round(total / count, 3)
            for kind, (total, count) in sorted(sums.items())}


def main() -> int:
    args = parse_args()
    if any(s % 16 for s in args.size):
        raise SystemExit(f'--size {args.size}: the public code needs '
                         'multiples of 16')
    from mmtpspike.models.backbones import SDTV1, load_sdtv1_checkpoint
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    images = torch.randn(args.batch, 3, *args.size).to(dtype)
    public = build_public(args).to(dtype)
    randomise_bn(public, images, args.timesteps, args.seed)
    ours = SDTV1(embed_dims=args.embed_dims, depth=args.depth,
                 num_timesteps=args.timesteps).to(dtype).eval()
    report = load_sdtv1_checkpoint(ours, public.state_dict())
    print(f'converter: {len(report["renamed"])} keys renamed, dropped '
          f'{report["dropped"]}, missing {report["missing"]}, unexpected '
          f'{report["unexpected"]}')
    with torch.no_grad():
        expected = public_features(public, images, args.timesteps)
        per_step = our_features(ours, images)
        merged = ours(images)[0]
    step_diff = float((per_step - expected).abs().max())
    mean_diff = float((merged - expected.mean(0)).abs().max())
    print(f'sizes: embed_dims {args.embed_dims}, depth {args.depth}, T '
          f'{args.timesteps}, images {args.batch}x3x{args.size[0]}x'
          f'{args.size[1]}, {args.dtype}')
    print(f'firing rates of SDTV1 neurons: {firing_rates(ours, images)}')
    print(f'final features: max |public| {float(expected.abs().max()):.4g}; '
          f'max abs difference per timestep {step_diff:.3g}, '
          f'averaged over timesteps {mean_diff:.3g}')
    failed = report['missing'] or report['unexpected'] or \
        max(step_diff, mean_diff) > args.atol
    print('MISMATCH' if failed else 'OK')
    return int(bool(failed))


if __name__ == '__main__':
    sys.exit(main())
