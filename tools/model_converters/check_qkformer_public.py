"""Check that our QKFormer computes what the public definition computes.

    python tools/model_converters/check_qkformer_public.py \\
        --public-code PATH/TO/QKFormer [--embed-dims 64] [--depths 10]
        [--num-heads 2] [--timesteps 4] [--size 64] [--batch 2] [--seed 0]
        [--tolerance 1e-5]

``--public-code`` is your copy of github.com/zhouchenlin2096/QKFormer (the
repository root or its ``imagenet`` folder; nothing of it is shipped here).
Its ``imagenet/qkformer.py`` needs timm (``timm.models.layers``, e.g.
0.6.12), einops and the old spikingjelly API (``spikingjelly.clock_driven``,
0.0.0.0.12 - 0.0.0.0.14); cupy is not needed, since its LIF neurons are
switched to the torch backend here. With this repository's classic stack::

    .venv-classic/bin/python -m pip install --no-deps --target /tmp/pubdeps \\
        timm==0.6.12 einops
    PYTHONPATH=/tmp/pubdeps .venv-classic/bin/python \\
        tools/model_converters/check_qkformer_public.py --public-code DIR

The script builds the public ``hierarchical_spiking_transformer`` at a small
width with random weights, gives every BN layer random affine parameters and
running statistics calibrated on the input (so that the neurons of every
block fire), converts the public state dict with
:func:`load_qkformer_checkpoint` (no missing or unexpected key allowed),
and runs the same images in eval mode through both. It prints the max abs
difference of the stride-16 features (last block, mean over ``T``), of the
class logits (our features, pooled, through the public head) and of our
pruned backbone at keep 1.0, and exits with 1 when one exceeds
``--tolerance``.

Two quirks of the public code shape the check: its SSA block reshapes its
output to ``[T, B, C, W, H]`` (so the input is square), and its SSA output
neuron (``proj_lif``) runs on a ``[T * B, C, N]`` tensor, i.e. over ``T * B``
steps, so an image's features depend on the images before it in the batch.
The public model therefore runs one image at a time (its intended result);
our backbone runs the whole batch. The script also prints how much the
public features of the last image change when it runs inside the batch.
"""
import argparse
import importlib.util
import os.path as osp
import sys
from functools import partial

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--public-code', required=True,
                        help='the public repository (root or imagenet/)')
    parser.add_argument('--embed-dims', type=int, default=64,
                        help='E: stage widths E/4, E/2, E')
    parser.add_argument('--depths', type=int, default=10,
                        help='total blocks (1 + 2 + the rest in stage 3)')
    parser.add_argument('--num-heads', type=int, default=2)
    parser.add_argument('--timesteps', type=int, default=4)
    parser.add_argument('--size', type=int, default=64,
                        help='square input side, a multiple of 16')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tolerance', type=float, default=1e-5)
    return parser.parse_args()


def import_public_model(public_code: str):
    """Import the public ``imagenet/qkformer.py`` with torch-backend LIFs."""
    candidates = [osp.join(public_code, 'imagenet', 'qkformer.py'),
                  osp.join(public_code, 'qkformer.py')]
    path = next((p for p in candidates if osp.isfile(p)), None)
    if path is None:
        sys.exit(f'--public-code {public_code}: no imagenet/qkformer.py or '
                 f'qkformer.py there; point it at your copy of '
                 f'github.com/zhouchenlin2096/QKFormer')
    try:
        from spikingjelly.clock_driven import functional, neuron
        import einops  # noqa: F401
        import timm  # noqa: F401
    except ImportError as err:
        sys.exit(f'the public model needs timm, einops and spikingjelly '
                 f'0.0.0.0.12 - 0.0.0.0.14 (spikingjelly.clock_driven): '
                 f'{err}. See this script\'s docstring.')

    class TorchBackendLIF(neuron.MultiStepLIFNode):
        """The public neuron on the torch backend (no cupy, runs on CPU)."""

        def __init__(self, *args, backend='torch', **kwargs):
            super().__init__(*args, backend='torch', **kwargs)

    neuron.MultiStepLIFNode = TorchBackendLIF
    spec = importlib.util.spec_from_file_location('qkformer_public', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
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


def public_stride16(public: nn.Module, images: torch.Tensor,
                    timesteps: int) -> torch.Tensor:
    """The public forward up to the last block: ``[T, B, C, H/16, W/16]``."""
    x = images.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1)
    for index in (1, 2, 3):
        x = getattr(public, f'patch_embed{index}')(x)
        for block in getattr(public, f'stage{index}'):
            x = block(x)
    return x


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def main():
    args = parse_args()
    if args.size % 16:
        sys.exit(f'--size {args.size}: must be a multiple of 16')
    if args.depths < 4:
        sys.exit(f'--depths {args.depths}: the public layout has 1 + 2 '
                 f'blocks before stage 3, so at least 4')
    public_module, functional = import_public_model(args.public_code)
    from mmtpspike.models.backbones import QKFormer
    from mmtpspike.models.backbones.qkformer_checkpoint import \
        load_qkformer_checkpoint

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    public = public_module.hierarchical_spiking_transformer(
        T=args.timesteps, img_size_h=args.size, img_size_w=args.size,
        patch_size=16, embed_dims=args.embed_dims, num_heads=args.num_heads,
        mlp_ratios=4, in_channels=3, num_classes=1000, qkv_bias=False,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), depths=args.depths,
        sr_ratios=1)
    images = torch.rand(args.batch, 3, args.size, args.size,
                        generator=generator)
    images = (images - 0.45) / 0.226  # ImageNet-normalised range

    def run_public(batch: torch.Tensor) -> torch.Tensor:
        functional.reset_net(public)
        return public_stride16(public, batch, args.timesteps).mean(0)

    activate(public, lambda: run_public(images), generator)
    rates = []
    public.stage3[-1].attn.attn_lif.register_forward_hook(
        lambda module, inputs, output: rates.append(float(output.mean())))
    with torch.no_grad():
        public_map = torch.cat([run_public(image[None]) for image in images])
        public_logits = public.head(public_map.flatten(2).mean(2))
        batched_map = run_public(images)

    embed = args.embed_dims
    common = dict(embed_dims=[embed // 4, embed // 2, embed],
                  depths=(1, 2, args.depths - 3), num_heads=args.num_heads,
                  num_timesteps=args.timesteps, out_indices=(2, ))
    ours = QKFormer(**common).eval()
    pruned = QKFormer(**common, pruning=dict(keep_ratios=1.0)).eval()
    report = load_qkformer_checkpoint(ours, public.state_dict())
    if report['missing'] or report['unexpected']:
        sys.exit(f'conversion left missing keys {report["missing"]} / '
                 f'unexpected keys {report["unexpected"]}')
    pruned.load_state_dict(ours.state_dict())
    with torch.no_grad():
        our_map, = ours(images)
        pruned_map, = pruned(images)
        our_logits = public.head(our_map.flatten(2).mean(2))

    print(f'QKFormer-{args.depths}-{embed}, {args.num_heads} heads, '
          f'T={args.timesteps}, input {args.batch}x3x{args.size}x'
          f'{args.size}; {len(report["renamed"])} keys renamed, dropped '
          f'{report["dropped"]}')
    print(f'last SSA block: attention firing rate {rates[0]:.3f}; '
          f'stride-16 features mean {float(public_map.mean()):.3f}')
    print(f'public code, last image alone vs inside the batch (its SSA '
          f'output neuron runs over T * B steps): max abs difference '
          f'{max_diff(public_map[-1], batched_map[-1]):.3g}')
    results = {
        'stride-16 features (last block, mean over T)':
        max_diff(public_map, our_map),
        'class logits': max_diff(public_logits, our_logits),
        'pruned backbone at keep 1.0 vs public':
        max_diff(public_map, pruned_map),
    }
    for name, value in results.items():
        print(f'max abs difference, {name}: {value:.3g}')
    if max(results.values()) > args.tolerance:
        sys.exit(f'FAILED: a difference exceeds --tolerance '
                 f'{args.tolerance}')
    print('OK: our QKFormer matches the public definition')


if __name__ == '__main__':
    main()
