"""Train a detector (mmdet config) or segmentor (mmseg config).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--skip-unreadable-images] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

Several processes / GPUs / nodes: tools/dist_train.sh (torchrun), or
``srun ... --launcher slurm``.
"""
import argparse
import os

import torch

from mmtpspike.engine.hooks import add_spiking_checkpoint_hook
from mmtpspike.utils.checkpoint import safe_load_checkpoint
from mmtpspike.utils.distributed import (backend_in_options, setup_distributed,
                                         shutdown_distributed)
from mmtpspike.utils.launch import (SetupError, build_runner, check_data_paths,
                                    check_image_loading, default_work_dir,
                                    friendly_errors, load_config,
                                    parse_common_args)


def parse_args(argv=None):
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
    parser.add_argument(
        '--skip-unreadable-images', action='store_true',
        help='skip training images that cannot be read (warning with a '
        'count) instead of stopping with an error')
    return parse_common_args(parser, argv)


def keep_resumed_seed(cfg) -> None:
    """Train on with the random seed of the checkpoint being resumed.

    mmengine builds the data sampler before it resumes, so without a seed in
    the config the resumed run would shuffle the data differently.
    """
    if cfg.get('randomness', {}).get('seed') is not None:
        return
    path = cfg.load_from
    if path is None:
        from mmengine.runner import find_latest_checkpoint
        path = find_latest_checkpoint(cfg.work_dir)
    if path is None or not os.path.isfile(path):
        return
    seed = safe_load_checkpoint(path).get('meta', {}).get('seed')
    if seed is not None:
        cfg.randomness = dict(cfg.get('randomness', {}), seed=seed)


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
    if args.resume is not None:
        keep_resumed_seed(cfg)
    if cfg.get('load_from') and not cfg.get('resume') and \
            '://' not in cfg.load_from and not os.path.isfile(cfg.load_from):
        raise SetupError(f'load_from checkpoint not found: {cfg.load_from}')
    return cfg


@friendly_errors
def main(argv=None):
    """Run the tool on ``argv`` (the command line when None)."""
    args = parse_args(argv)
    cfg = apply_args(load_config(args.config, args.cfg_options), args)
    loaders = ('train_dataloader', ) + (
        ('val_dataloader', ) if cfg.get('val_cfg') else ())
    check_data_paths(cfg, loaders)
    add_spiking_checkpoint_hook(cfg)
    check_image_loading(cfg, loaders, args.skip_unreadable_images)
    setup_distributed(cfg, backend_in_options(args.cfg_options))
    runner = build_runner(cfg)
    runner.train()
    shutdown_distributed()


if __name__ == '__main__':
    main()
