"""Draw which tokens each transformer block kept and the score heat map.

    python tools/analysis/visualize_tokens.py CONFIG CHECKPOINT IMAGE ...
        --out-dir DIR [--keep 0.56] [--cfg-options ...]
    python tools/analysis/visualize_tokens.py EVENT_CONFIG CHECKPOINT
        --num-images 4 --out-dir DIR [--keep 0.56]

For every image a PNG grid is written to DIR: one column per transformer
block; top row: the image with early-stopped tokens tinted red (padding
grey), bottom row: the token scores (rank-normalised, JET colours). Works for
mmdet and mmseg configs; images are resized as the config's test pipeline
does. Event configs (``configs/event_det/``) draw the first
``--num-images`` samples of their test set instead of images, over a
picture of their event frames (time bins summed; ON events red, OFF blue).
CHECKPOINT may be ``none`` to look at an untrained model.
"""
import argparse
import os
import os.path as osp

import cv2
import mmcv
import torch
from mmengine.config import DictAction

from mmtpspike.analysis.model_io import (build_pruned_model, event_samples,
                                         is_event_config, read_image,
                                         set_full_img_shapes,
                                         test_resize_scale, to_input)
from mmtpspike.utils.config import SetupError
from mmtpspike.utils.launch import friendly_errors
from mmtpspike.visualization import draw_token_grid, event_frame_image


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="weights, or 'none'")
    parser.add_argument('images', nargs='*',
                        help='images (image configs)')
    parser.add_argument('--num-images', type=int, default=4,
                        help='first test samples drawn (event configs)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--keep', type=float,
                        help='uniform keep ratio (default: the config\'s)')
    parser.add_argument('--max-side', type=int, default=320,
                        help='longer side of each tile in the grid')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def image_inputs(args, cfg, model):
    """``(name, BGR picture, model input)`` of each image argument."""
    if not args.images:
        raise SetupError('give one or more IMAGE paths')
    scale = test_resize_scale(cfg)
    for path in args.images:
        image = read_image(path)
        if scale is not None:
            image = mmcv.imrescale(image, scale)
        yield (osp.splitext(osp.basename(path))[0], image,
               to_input([image], image.shape[:2], model))


def event_inputs(args, cfg, model):
    """``(name, BGR picture, model input)`` of the first test samples of an
    event config."""
    if args.images:
        raise SetupError('an event config draws the samples of its test '
                         'set: use --num-images N instead of image paths')
    inputs, names, frames = event_samples(cfg, model, args.num_images)
    height, width = inputs.shape[-2:]
    for name, sample_frames, sample_inputs in zip(names, frames, inputs):
        picture = event_frame_image(sample_frames[:, :height, :width])
        yield name, picture, sample_inputs[None]


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    model, cfg = build_pruned_model(
        args.config, args.checkpoint, args.cfg_options,
        None if args.keep is None else [args.keep])
    backbone = model.backbone
    inputs = event_inputs if is_event_config(cfg) else image_inputs
    os.makedirs(args.out_dir, exist_ok=True)
    for name, picture, model_input in inputs(args, cfg, model):
        set_full_img_shapes(backbone, model_input)
        with torch.no_grad():
            backbone(model_input)
        grid = draw_token_grid(picture, backbone.token_records,
                               max_side=args.max_side)
        out = osp.join(args.out_dir, name + '_tokens.png')
        cv2.imwrite(out, grid)
        print(f'{name} -> {out} ({grid.shape[1]} x {grid.shape[0]})')


if __name__ == '__main__':
    main()
