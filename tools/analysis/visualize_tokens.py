"""Draw which tokens each transformer block kept and the score heat map.

    python tools/analysis/visualize_tokens.py CONFIG CHECKPOINT IMAGE ...
        --out-dir DIR [--keep 0.56] [--cfg-options ...]

For every image a PNG grid is written to DIR: one column per transformer
block; top row: the image with early-stopped tokens tinted red (padding
grey), bottom row: the token scores (rank-normalised, JET colours). Works for
mmdet and mmseg configs; images are resized as the config's test pipeline
does. CHECKPOINT may be ``none`` to look at an untrained model.
"""
import argparse
import os
import os.path as osp

import cv2
import mmcv
import torch
from mmengine.config import DictAction

from mmtpspike.analysis.model_io import (build_pruned_model, read_image,
                                         test_resize_scale, to_input)
from mmtpspike.utils.launch import friendly_errors
from mmtpspike.visualization import draw_token_grid


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="weights, or 'none'")
    parser.add_argument('images', nargs='+')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--keep', type=float,
                        help='uniform keep ratio (default: the config\'s)')
    parser.add_argument('--max-side', type=int, default=320,
                        help='longer side of each tile in the grid')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    model, cfg = build_pruned_model(
        args.config, args.checkpoint, args.cfg_options,
        None if args.keep is None else [args.keep])
    backbone = model.backbone
    scale = test_resize_scale(cfg)
    os.makedirs(args.out_dir, exist_ok=True)
    for path in args.images:
        image = read_image(path)
        if scale is not None:
            image = mmcv.imrescale(image, scale)
        with torch.no_grad():
            backbone(to_input([image], image.shape[:2], model))
        grid = draw_token_grid(image, backbone.token_records,
                               max_side=args.max_side)
        out = osp.join(args.out_dir,
                       osp.splitext(osp.basename(path))[0] + '_tokens.png')
        cv2.imwrite(out, grid)
        print(f'{path} -> {out} ({grid.shape[1]} x {grid.shape[0]})')


if __name__ == '__main__':
    main()
