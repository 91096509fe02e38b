"""Evaluate a checkpoint: COCO mAP (mmdet config) or mIoU (mmseg config).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE|DIR]
        [--show-dir DIR] [--cfg-options KEY=VALUE ...] [--launcher ...]

A dense checkpoint evaluates with token pruning when the config's backbone
has ``pruning`` set (training-free pruning); change ratios with e.g.
``--cfg-options model.backbone.pruning.keep_ratios=0.56``. Without such an
option, a checkpoint that records the keep ratios it ran with (e.g. reached
by a RetentionScheduleHook) is evaluated at those ratios.
Several processes / GPUs / nodes: tools/dist_test.sh (torchrun).
"""
import argparse
import os
import os.path as osp

from mmtpspike.engine.hooks import (add_spiking_checkpoint_hook,
                                    sets_keep_ratios)
from mmtpspike.utils.distributed import (backend_in_options, setup_distributed,
                                         shutdown_distributed)
from mmtpspike.utils.launch import (SetupError, build_runner, check_data_paths,
                                    check_image_loading, default_work_dir,
                                    friendly_errors, load_config,
                                    parse_common_args)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='dir for the evaluation logs')
    parser.add_argument(
        '--out',
        help='detection: .pkl file to dump the results to; segmentation: '
        'directory for the predicted label PNGs')
    parser.add_argument(
        '--show-dir',
        help='directory (inside the work dir) where painted predictions '
        'are saved')
    parser.add_argument(
        '--show-tokens', action='store_true',
        help='with --show-dir, also save per-block kept-token maps')
    return parse_common_args(parser, argv)


def enable_visualization(cfg, args):
    """Turn on the stock visualisation hook and the token maps."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise SetupError('--show-dir needs default_hooks.visualization in '
                         'the config')
    hook['draw'] = True
    if cfg.default_scope == 'mmdet':
        hook['test_out_dir'] = args.show_dir
    else:
        # mmseg draws every interval-th image only; draw them all
        hook['interval'] = 1
        cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, args.show_dir)
    if args.show_tokens:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='TokenMapHook', out_dir=args.show_dir)
        ]


def add_result_dump(runner, cfg, out):
    """Dump raw results (det: pickle) or label maps (seg: PNG dir)."""
    if cfg.default_scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        if not out.endswith(('.pkl', '.pickle')):
            raise SetupError('--out for detection must be a .pkl file')
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))


def apply_args(cfg, args):
    if not osp.isfile(args.checkpoint):
        raise SetupError(f'checkpoint not found: {args.checkpoint}')
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or \
        default_work_dir(args.config)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show_dir:
        enable_visualization(cfg, args)
    elif args.show_tokens:
        raise SetupError('--show-tokens needs --show-dir')
    if args.out and cfg.default_scope == 'mmseg':
        # every rank writes label maps; mmseg creates the folder on rank 0
        # only, and without waiting for it
        os.makedirs(args.out, exist_ok=True)
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


@friendly_errors
def main(argv=None):
    """Run the tool on ``argv`` (the command line when None)."""
    args = parse_args(argv)
    cfg = apply_args(load_config(args.config, args.cfg_options), args)
    check_data_paths(cfg, ('test_dataloader', ))
    add_spiking_checkpoint_hook(
        cfg, apply_keep_ratios=not sets_keep_ratios(args.cfg_options))
    check_image_loading(cfg, ('test_dataloader', ))
    setup_distributed(cfg, backend_in_options(args.cfg_options))
    runner = build_runner(cfg)
    if args.out:
        add_result_dump(runner, cfg, args.out)
    runner.test()
    shutdown_distributed()


if __name__ == '__main__':
    main()
