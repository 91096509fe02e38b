"""Parameters, MACs, SOPs and energy of a config's backbone + neck as they
really run, for dense and pruned settings.

    python tools/analysis/complexity.py CONFIG [--checkpoint CKPT]
        [--shape H W] [--keep 1.0 0.78 0.56] [--images IMG ...]
        [--num-images 2] [--out report.json] [--cfg-options ...]

* MACs: convs, attention matmuls and the token scorer as they run (skipped
  attention / MLP work is not counted, the scorer's cost is); norm layers
  excluded (folded into convs at inference). For keep = 1.0 this equals
  mmengine's FlopAnalyzer count of the BN-folded model.
* SOPs: MACs x measured mean spike count of each spike-driven layer's input,
  on real images (``--images``, default: the config's test images); the
  detection / segmentation heads (stock ANN layers) are not included.
  Event configs (``configs/event_det/``) run on the first ``--num-images``
  samples of their test set, through their own pipeline (``--images`` and
  ``--shape`` do not apply); event counts are integer spikes, so even the
  encoding conv counts SOPs there.
* Energy: 4.6 pJ per MAC (encoding conv and scorer) + 0.9 pJ per AC (SOPs),
  45 nm figures (Horowitz 2014) as in the SNN literature.
Firing rates depend on the weights: pass a trained ``--checkpoint``. Without
one, the BN statistics of the untrained model are first set from one
forward of the input images at keep 1.0 with BN in training mode
(``--calibrate-bn N``: N forwards; 0: none): with its initial statistics an
untrained model is almost silent after a few layers, and its SOPs and energy
would say nothing (pruning would even seem to cost energy).
"""
import argparse
import json

import torch
from mmengine.config import DictAction

from mmtpspike.analysis.bn_calibration import (calibrating_bn,
                                               calibration_passes)
from mmtpspike.analysis.complexity import MacCounter, energy_model_text
from mmtpspike.analysis.energy import model_max_spikes
from mmtpspike.analysis.model_io import (DEFAULT_INPUT_SHAPES,
                                         EVENT_SAMPLES, BackboneNeck,
                                         build_model, default_images,
                                         event_samples, input_kind,
                                         is_event_config, read_image,
                                         to_input)
from mmtpspike.utils.config import SetupError
from mmtpspike.utils.launch import friendly_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='trained weights')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--keep', type=float, nargs='+',
                        default=[1.0, 0.78, 0.56],
                        help='uniform keep ratios to report')
    parser.add_argument('--images', nargs='+', help='input images')
    parser.add_argument('--num-images', type=int, default=2)
    parser.add_argument('--calibrate-bn', type=int, metavar='N',
                        help='set BN statistics from N forwards of the '
                        'images (default: 1 without --checkpoint, 0 with '
                        'one)')
    parser.add_argument('--out', help='write the report as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def params_m(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def calibrate_bn(net: BackboneNeck, inputs, iterations: int) -> None:
    """Set BN running statistics to the mean over ``iterations`` dense
    (keep 1.0) forwards of ``inputs: [B, 3, H, W]``; only the BN layers
    run in training mode (no drop path)."""
    net.backbone.set_keep_ratios(1.0)
    with torch.no_grad(), calibrating_bn(net):
        for _ in range(iterations):
            net(inputs)


def untrained_note(iterations: int, num_images: int, kind: str) -> str:
    """What the figures of a model without checkpoint stand for."""
    if not iterations:
        return ('warning: no --checkpoint and --calibrate-bn 0: the untrained '
                'BN statistics leave most neurons silent, so SOPs and energy '
                'say nothing about a trained model')
    return (f'no --checkpoint: BN statistics of the untrained model set from '
            f'{iterations} forward(s) of the {num_images} input {kind}, so '
            f'that it fires; pass a trained --checkpoint for real firing '
            f'rates')


def analyse(net: BackboneNeck, inputs, keep: float) -> dict:
    """Count one forward of backbone + neck at a keep ratio."""
    net.backbone.set_keep_ratios(keep)
    with torch.no_grad(), MacCounter(net, model_max_spikes(net)) as counter:
        net(inputs)
    per_image = inputs.shape[0] * 1e9
    return dict(
        keep=keep,
        backbone_gmacs=counter.total_of('backbone.') / per_image,
        neck_gmacs=counter.total_of('neck.') / per_image,
        scorer_gmacs=counter.total_of('scorer') / per_image,
        gmacs=counter.total / per_image,
        gsops=counter.sops / per_image,
        energy_mj=counter.energy_mj() / inputs.shape[0],
        realised_keep={r.block_name: r.realised_keep_ratio
                       for r in net.backbone.token_records})


def print_report(report: dict) -> None:
    print(f"{report['config']} | input {report['shape'][0]} x "
          f"{report['shape'][1]} | {report['num_images']} {report['input']}")
    print(f"params: backbone {report['backbone_params_m']:.2f} M, neck "
          f"{report['neck_params_m']:.2f} M (heads not counted)")
    print('| keep | backbone GMACs | neck GMACs | scorer GMACs | total GMACs '
          '| GSOPs | energy (mJ) | MACs vs dense |')
    print('|' + ' --- |' * 8)
    dense = report['settings'][0]['gmacs']
    for row in report['settings']:
        print(f"| {row['keep']:.2f} | {row['backbone_gmacs']:.2f} | "
              f"{row['neck_gmacs']:.2f} | {row['scorer_gmacs']:.3f} | "
              f"{row['gmacs']:.2f} | {row['gsops']:.2f} | "
              f"{row['energy_mj']:.2f} | {row['gmacs'] / dense:.3f} |")
    blocks = list(report['settings'][0]['realised_keep'])
    print('realised keep ratio per block:')
    print('| keep | ' + ' | '.join(blocks) + ' |')
    print('|' + ' --- |' * (len(blocks) + 1))
    for row in report['settings']:
        print(f"| {row['keep']:.2f} | " + ' | '.join(
            f"{row['realised_keep'][b]:.3f}" for b in blocks) + ' |')
    print('energy model: ' +
          energy_model_text(report['input'] == EVENT_SAMPLES))


def model_inputs(args, cfg, model):
    """``(H, W)``, the inputs and their names: event samples of an event
    config's test set, or images."""
    if is_event_config(cfg):
        if args.images or args.shape:
            raise SetupError(
                'an event config runs on the samples of its test set: use '
                '--num-images N instead of --images / --shape')
        inputs, names, _ = event_samples(cfg, model, args.num_images)
        return tuple(inputs.shape[-2:]), inputs, names
    shape = tuple(args.shape or DEFAULT_INPUT_SHAPES[cfg.default_scope])
    paths = args.images or default_images(cfg, args.num_images)
    return shape, to_input([read_image(p) for p in paths], shape,
                           model), paths


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    model, cfg = build_model(args.config, args.checkpoint, args.cfg_options)
    shape, inputs, paths = model_inputs(args, cfg, model)
    net = BackboneNeck(model, unpadded=True)
    iterations = calibration_passes(args.calibrate_bn, bool(args.checkpoint))
    if iterations:
        calibrate_bn(net, inputs, iterations)
    if not args.checkpoint:
        print(untrained_note(iterations, len(paths), input_kind(cfg)))
    report = dict(
        config=args.config, checkpoint=args.checkpoint,
        calibrate_bn=iterations, shape=list(shape), input=input_kind(cfg),
        num_images=len(paths),
        images=paths, backbone_params_m=params_m(model.backbone),
        neck_params_m=params_m(model.neck) if hasattr(model, 'neck') else 0,
        settings=[analyse(net, inputs, keep) for keep in args.keep])
    print_report(report)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()
