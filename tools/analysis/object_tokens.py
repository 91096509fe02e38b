"""Report how many tokens inside ground-truth objects stop early.

    python tools/analysis/object_tokens.py CONFIG CHECKPOINT \
        [--keep 0.56] [--num-images 50] [--out report.json] [--cfg-options ...]

Runs the config's own test pipeline on its test set (the first
``--num-images`` images), and prints, per transformer block, the share of
valid tokens that stopped early inside small / medium / large objects (COCO
areas) next to the share in the background: whether pruning eats the
objects. Detection objects are instances; segmentation objects are class
regions. See ``mmtpspike.analysis.object_tokens``.
"""
import argparse
import itertools
import json

import torch
from mmengine.config import DictAction

from mmtpspike.analysis.model_io import build_model
from mmtpspike.analysis.object_tokens import (ObjectTokenTally,
                                              class_region_masks,
                                              instance_masks)
from mmtpspike.utils.launch import SetupError, check_data_paths, \
    friendly_errors


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="weights, or 'none'")
    parser.add_argument('--keep', type=float, nargs='+',
                        help="keep ratio(s) (default: the config's)")
    parser.add_argument('--num-images', type=int, default=50)
    parser.add_argument('--out', help='also write the shares as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def tally_dataset(model, cfg, num_images: int) -> ObjectTokenTally:
    """Run the backbone on the test set and count stopped tokens."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    tally = ObjectTokenTally()
    seen = 0
    ignore_index = cfg.model.get('decode_head', {}).get('ignore_index', 255)
    for batch in itertools.islice(loader, None):
        data = model.data_preprocessor(batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        model.backbone.set_img_shapes(
            [s.metainfo['img_shape'][:2] for s in samples],
            tuple(inputs.shape[-2:]))
        with torch.no_grad():
            model.backbone(inputs)
        records = model.backbone.token_records
        for row, sample in enumerate(samples):
            if cfg.default_scope == 'mmdet':
                masks, areas = instance_masks(sample, inputs.shape[-2:])
                tally.add_image(records, row, masks, areas)
            else:
                masks, areas, ignore = class_region_masks(
                    sample, inputs.shape[-2:], ignore_index)
                tally.add_image(records, row, masks, areas, ignore)
            seen += 1
            if seen >= num_images:
                return tally
    return tally


@friendly_errors
def main():
    args = parse_args()
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    model, cfg = build_model(args.config, checkpoint, args.cfg_options)
    check_data_paths(cfg, ('test_dataloader', ))
    if args.keep is not None:
        model.backbone.set_keep_ratios(
            args.keep[0] if len(args.keep) == 1 else args.keep)
    if all(k >= 1 for k in model.backbone.pruner.keep_ratios):
        raise SetupError('all keep ratios are 1.0 (dense): pass --keep')
    tally = tally_dataset(model, cfg, args.num_images)
    print(tally.table())
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(dict(shares=tally.shares(), objects=tally.objects),
                      file, indent=1)


if __name__ == '__main__':
    main()
