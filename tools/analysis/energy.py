"""Per-layer firing rates, SOPs and energy of a config's backbone + neck on
its own test images (or event samples), dense vs pruned.

    python tools/analysis/energy.py CONFIG [CHECKPOINT] [--num-images 8]
        [--keep 1.0 0.78 0.56] [--out-dir work_dirs/energy]
        [--e-mac 4.6] [--e-ac 0.9] [--calibrate-bn N] [--seed 0]
        [--cfg-options ...]

Runs the config's test pipeline (its test dataloader, one image per forward)
on the first ``--num-images`` images of its test set, once per keep ratio,
and measures every layer of backbone + neck (the heads are stock ANN layers,
not counted):

* MAC layers (real-valued input: the encoding conv on images, the token
  scorer) cost ``E_MAC x MACs``;
* AC layers (spike input) cost ``E_AC x SOPs`` with ``SOPs = r x T x
  FLOPs``, ``r`` the measured input firing rate (spikes per input neuron and
  timestep, an integer spike ``n`` counting as ``n`` binary spikes).

Event configs (``configs/event_det/``) run on the first ``--num-images``
samples of their test set (labelled timestamps; their event windows through
the config's representation, ``[1, T, 2, H, W]``). Their input is event
counts, i.e. integer spikes: the encoding conv is an AC layer there, ``n``
events at a pixel costing ``n`` accumulates per synapse, so the stem's
input firing rate is the mean event count per pixel, polarity and time bin
(a representation giving real values would make it a MAC layer again).

Pruned rows count only the work that ran (kept tokens) plus the scorer.
Writes ``OUT_DIR/layers.csv`` (one row per layer and keep ratio),
``OUT_DIR/summary.json`` (totals and per-stage sums, mean and std over
images) and ``OUT_DIR/energy.png``, and prints a markdown summary. Without a
checkpoint the untrained model's BN statistics are first set from the test
images (``--calibrate-bn N``: N passes; 0: none), and the tool says so. See
``docs/energy.md``.
"""
import argparse
import copy
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Callable, Iterator, Tuple

import torch
from mmengine.config import DictAction
from mmengine.runner import set_random_seed

from mmtpspike.analysis.bn_calibration import (calibrating_bn,
                                               calibration_passes)
from mmtpspike.analysis.complexity import (ENERGY_PER_AC_PJ,
                                           ENERGY_PER_MAC_PJ)
from mmtpspike.analysis.energy import EnergyCosts, EnergyMeter
from mmtpspike.analysis.energy_report import (layer_rows, markdown, plot,
                                              summarize, write_csv)
from mmtpspike.analysis.model_io import (BackboneNeck, build_model,
                                         input_kind)
from mmtpspike.utils.config import SetupError
from mmtpspike.utils.launch import (check_data_paths, check_image_loading,
                                    friendly_errors)
from mmtpspike.visualization import is_event_sample, sample_name

LOADER = 'test_dataloader'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='trained weights')
    parser.add_argument('--num-images', type=int, default=8,
                        help='first N images (event configs: samples) of '
                        'the test set')
    parser.add_argument('--keep', type=float, nargs='+',
                        default=[1.0, 0.78, 0.56],
                        help='uniform keep ratios to measure (first one is '
                        'the reference of the "vs" column)')
    parser.add_argument('--out-dir', default='work_dirs/energy')
    parser.add_argument('--e-mac', type=float, default=ENERGY_PER_MAC_PJ,
                        help='pJ per MAC (real-valued input)')
    parser.add_argument('--e-ac', type=float, default=ENERGY_PER_AC_PJ,
                        help='pJ per AC (one spike reaching one synapse)')
    parser.add_argument('--calibrate-bn', type=int, metavar='N',
                        help='set BN statistics from N passes over the '
                        'images (default: 1 without checkpoint, 0 with one)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (the initial weights of a model '
                        'without checkpoint)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def check_args(args) -> None:
    """Refuse values the measurement cannot use."""
    if args.num_images < 1:
        raise SetupError(f'--num-images must be >= 1, got {args.num_images}')
    if any(not 0 < keep <= 1 for keep in args.keep):
        raise SetupError(f'--keep values must be in (0, 1], got {args.keep}')
    if min(args.e_mac, args.e_ac) < 0:
        raise SetupError('--e-mac and --e-ac must be >= 0')
    if args.calibrate_bn is not None and args.calibrate_bn < 0:
        raise SetupError('--calibrate-bn must be >= 0')


def test_loader(cfg):
    """The config's test dataloader with one image per batch."""
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg[LOADER])
    loader_cfg.batch_size = 1
    return Runner.build_dataloader(loader_cfg)


def test_images(model, loader, num_images: int
                ) -> Iterator[Tuple[torch.Tensor, tuple, str]]:
    """The first ``num_images`` images of a test loader (the config's test
    pipeline), through the model's data preprocessor, one at a time.

    Yields:
        tuple: inputs ``[1, 3, H, W]`` (event samples: ``[1, T, 2, H, W]``;
        padded as the preprocessor pads), the sample's ``(h, w)`` before
        padding, and its name (an image's file path, an event sample's
        ``<recording>_<t>us``).
    """
    for index, batch in enumerate(loader):
        if index == num_images:
            return
        data = model.data_preprocessor(batch, False)
        meta = data['data_samples'][0].metainfo
        name = sample_name(meta) if is_event_sample(meta) else meta.get(
            'img_path', '')
        yield data['inputs'], tuple(meta['img_shape'][:2]), name


def forward(net: BackboneNeck, inputs: torch.Tensor, img_shape) -> None:
    """One forward, telling a padding-aware backbone the valid size."""
    if hasattr(net.backbone, 'set_img_shapes'):
        net.backbone.set_img_shapes([img_shape], tuple(inputs.shape[-2:]))
    net(inputs)


def set_keep(backbone, keep: float) -> None:
    """Uniform keep ratio; keep 1.0 is a no-op on backbones without
    pruning."""
    if not hasattr(backbone, 'set_keep_ratios'):
        if keep < 1:
            raise SetupError(f'{type(backbone).__name__} has no token '
                             f'pruning: use --keep 1.0')
        return
    backbone.set_keep_ratios(keep)


def calibrate(net: BackboneNeck, images: Callable, passes: int) -> None:
    """Set BN statistics from ``passes`` dense passes over the images."""
    set_keep(net.backbone, 1.0)
    with torch.no_grad(), calibrating_bn(net):
        for _ in range(passes):
            for inputs, img_shape, _ in images():
                forward(net, inputs, img_shape)


def measure(net: BackboneNeck, images: Callable, keep: float):
    """Run the images at ``keep``; return the meter and the mean realised
    keep ratio of each transformer block."""
    set_keep(net.backbone, keep)
    try:
        meter = EnergyMeter(net)
    except ValueError as err:
        raise SetupError(str(err)) from err
    realised = defaultdict(list)
    with torch.no_grad(), meter:
        for inputs, img_shape, _ in images():
            forward(net, inputs, img_shape)
            for record in getattr(net.backbone, 'token_records', []):
                realised[record.block_name].append(
                    record.realised_keep_ratio)
    return meter, {block: sum(v) / len(v) for block, v in realised.items()}


def untrained_note(passes: int, num_images: int, input_kind: str) -> str:
    """What the figures of a model without checkpoint stand for."""
    if not passes:
        return ('warning: no checkpoint and --calibrate-bn 0: the untrained '
                'BN statistics leave most neurons silent, so firing rates, '
                'SOPs and energy say nothing about a trained model')
    return (f'no checkpoint: BN statistics of the untrained model set from '
            f'{passes} pass(es) over the {num_images} test {input_kind}, so '
            f'that it fires; pass a trained CHECKPOINT for real firing rates')


def make_out_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise SetupError(f'cannot create --out-dir {path}: {err}') from err


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    check_args(args)
    set_random_seed(args.seed)
    model, cfg = build_model(args.config, args.checkpoint, args.cfg_options)
    check_data_paths(cfg, (LOADER, ))
    check_image_loading(cfg, (LOADER, ))
    make_out_dir(args.out_dir)
    kind = input_kind(cfg)
    loader = test_loader(cfg)
    paths = [sample[2] for sample in test_images(model, loader,
                                                 args.num_images)]
    if not paths:
        raise SetupError(f'the test set of {args.config} is empty')
    if len(paths) < args.num_images:
        print(f'note: the test set has only {len(paths)} {kind}')

    def images():
        return test_images(model, loader, len(paths))

    net = BackboneNeck(model)
    passes = calibration_passes(args.calibrate_bn, bool(args.checkpoint))
    if passes:
        calibrate(net, images, passes)
    if not args.checkpoint:
        print(untrained_note(passes, len(paths), kind))
    costs = EnergyCosts(args.e_mac, args.e_ac)
    timesteps = getattr(model.backbone, 'num_timesteps', 1)
    rows_by_keep, settings = {}, []
    for keep in args.keep:
        meter, realised = measure(net, images, keep)
        rows_by_keep[keep] = layer_rows(meter, keep, costs, timesteps)
        settings.append(dict(summarize(meter, keep, costs),
                             realised_keep=realised))
    report = dict(
        config=args.config, checkpoint=args.checkpoint,
        calibrate_bn=passes, input=kind,
        measured='backbone + neck' if net.neck is not None else 'backbone',
        num_images=len(paths), images=paths, timesteps=timesteps,
        max_spikes=meter.max_spikes,
        energy_model=dict(e_mac_pj=costs.e_mac_pj, e_ac_pj=costs.e_ac_pj),
        settings=settings)
    write_csv([row for rows in rows_by_keep.values() for row in rows],
              osp.join(args.out_dir, 'layers.csv'))
    with open(osp.join(args.out_dir, 'summary.json'), 'w') as file:
        json.dump(report, file, indent=1)
    plot(rows_by_keep, osp.join(args.out_dir, 'energy.png'))
    print(markdown(report))
    print(f'wrote {args.out_dir}/layers.csv, summary.json, energy.png')


if __name__ == '__main__':
    main()
