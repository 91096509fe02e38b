"""Train a detector (mmdet config) or segmentor (mmseg config).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]
"""
import argparse
import os

import torch

from mmtpspike.utils.launch import (SetupError, build_runner, check_data_paths,
                                    default_work_dir, friendly_errors,
                                    load_config, parse_common_args)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='dir for logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the lr by the real batch size')
    return parse_common_args(parser)


def apply_args(cfg, args):
    """Apply command-line choices to the config."""
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or \
        default_work_dir(args.config)
    if args.amp:
        if not torch.cuda.is_available():
            raise SetupError('--amp needs a CUDA device (mmengine\'s '
                             'AmpOptimWrapper does not run on CPU)')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP is already enabled in the config')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise SetupError('--auto-scale-lr needs auto_scale_lr '
                             '(enable, base_batch_size) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not os.path.isfile(args.resume):
            raise SetupError(f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    if cfg.get('load_from') and not cfg.get('resume') and \
            '://' not in cfg.load_from and not os.path.isfile(cfg.load_from):
        raise SetupError(f'load_from checkpoint not found: {cfg.load_from}')
    return cfg


@friendly_errors
def main():
    args = parse_args()
    cfg = apply_args(load_config(args.config, args.cfg_options), args)
    loaders = ('train_dataloader', ) + (
        ('val_dataloader', ) if cfg.get('val_cfg') else ())
    check_data_paths(cfg, loaders)
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
