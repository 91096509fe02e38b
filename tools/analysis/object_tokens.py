"""Report how many tokens inside ground-truth objects stop early.

    python tools/analysis/object_tokens.py CONFIG CHECKPOINT \
        [--keep 0.56] [--num-images 50] [--out report.json] [--cfg-options ...]

Runs the config's own test pipeline on its test set (the first
``--num-images`` images), and prints, per transformer block, the share of
valid tokens that stopped early inside small / medium / large objects (COCO
areas) next to the share in the background: whether pruning eats the
objects. Detection objects are instances; segmentation objects are class
regions; event configs (``configs/event_det/``) take the first
``--num-images`` samples (labelled timestamps) and their boxes, in sensor
pixels, scaled to the representation by its ``scale_factor``. See
``mmtpspike.analysis.object_tokens``.
"""
import argparse
import json

from mmengine.config import DictAction

from mmtpspike.analysis.model_io import build_pruned_model
from mmtpspike.analysis.object_tokens import tally_dataset
from mmtpspike.utils.launch import check_data_paths, friendly_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="weights, or 'none'")
    parser.add_argument('--keep', type=float, nargs='+',
                        help="keep ratio(s) (default: the config's)")
    parser.add_argument('--num-images', type=int, default=50,
                        help='first N images (event configs: samples) of '
                        'the test set')
    parser.add_argument('--out', help='also write the shares as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    model, cfg = build_pruned_model(args.config, args.checkpoint,
                                    args.cfg_options, args.keep)
    check_data_paths(cfg, ('test_dataloader', ))
    tally = tally_dataset(model, cfg, args.num_images)
    print(tally.table())
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(dict(shares=tally.shares(), objects=tally.objects),
                      file, indent=1)


if __name__ == '__main__':
    main()
