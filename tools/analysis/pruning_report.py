"""Train a dense demo model, then evaluate it training-free with pruning.

    python tools/analysis/pruning_report.py configs/det/sdtv3_coco_demo.py \
        --work-dir work_dirs/det_report --train-options train_cfg.max_epochs=48
    python tools/analysis/pruning_report.py configs/seg/sdtv3_ade20k_demo.py \
        --work-dir work_dirs/seg_report --train-options train_cfg.max_iters=2000

Steps: (1) train the dense config (skipped with ``--checkpoint``); (2)
evaluate the same weights with token pruning switched on, at every
``--keep`` ratio, with the IRToP scorer (paper and public-code variants),
random selection and the token L2 norm; (3) print
a markdown table of the task metrics (COCO bbox / segm mAP, or mIoU / mAcc)
and the backbone latency (median of 15 forwards of one image at the test
scale, after warm-up, same process for every row).
"""
import argparse
import copy
import os.path as osp

import torch
from mmengine.config import DictAction

from mmtpspike.analysis.benchmark import time_forward
from mmtpspike.analysis.model_io import test_resize_scale
from mmtpspike.utils.launch import (build_runner, check_data_paths,
                                    friendly_errors, load_config)

METRICS = {
    'mmdet': [('coco/bbox_mAP', 'bbox mAP'), ('coco/segm_mAP', 'segm mAP')],
    'mmseg': [('mIoU', 'mIoU'), ('mAcc', 'mAcc')],
}
SCORERS = {
    'IRToP': dict(type='IRToPScorer'),
    'IRToP (public-code variant)': dict(type='IRToPScorer',
                                        variant='reference'),
    'random': dict(type='RandomScorer', seed=0),
    'L2 norm': dict(type='L2NormScorer'),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='dense demo config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--checkpoint', help='skip training, use these weights')
    parser.add_argument('--keep', type=float, nargs='+', default=[0.78, 0.56])
    parser.add_argument('--train-options', nargs='+', action=DictAction,
                        help='config overrides for training only')
    parser.add_argument('--out', help='also write the table to this file')
    return parser.parse_args()


def backbone_latency_ms(backbone, shape, warmup: int = 3,
                        repeats: int = 15) -> float:
    """Median latency of the backbone on one fixed-size random image, so
    that every row is timed the same way (the evaluation loop itself sees
    images of varying sizes, which makes its timings noisy)."""
    image = torch.randn(1, 3, *shape)
    result = time_forward(backbone.eval(), (image, ), warmup, repeats)
    return result['median'] * 1e3


def train(args) -> str:
    cfg = load_config(args.config, args.train_options)
    cfg.work_dir = osp.join(args.work_dir, 'train')
    check_data_paths(cfg)
    runner = build_runner(cfg)
    runner.train()
    return osp.join(cfg.work_dir, open(osp.join(
        cfg.work_dir, 'last_checkpoint')).read().strip().split('/')[-1])


def evaluate(args, checkpoint: str, pruning) -> dict:
    cfg = load_config(args.config)
    cfg.model.backbone.pruning = pruning
    cfg.load_from = checkpoint
    name = 'dense' if pruning is None else '_'.join(
        str(v) for v in [*pruning['scorer'].values(), pruning['keep_ratios']])
    cfg.work_dir = osp.join(args.work_dir, 'eval', name)
    cfg.default_hooks.logger.interval = 1000
    runner = build_runner(cfg)
    metrics = runner.test()
    width, height = test_resize_scale(cfg)
    metrics['backbone_ms'] = backbone_latency_ms(runner.model.backbone,
                                                 (height, width))
    return metrics


@friendly_errors
def main():
    args = parse_args()
    checkpoint = args.checkpoint or train(args)
    scope = load_config(args.config).default_scope
    rows = [('dense', 1.0, evaluate(args, checkpoint, None))]
    for scorer_name, scorer in SCORERS.items():
        for keep in args.keep:
            pruning = dict(keep_ratios=keep, scorer=copy.deepcopy(scorer),
                           mode='per_block')
            rows.append((scorer_name, keep,
                         evaluate(args, checkpoint, pruning)))
    dense_ms = rows[0][2]['backbone_ms']
    names = METRICS[scope]
    lines = [
        f'Config: `{args.config}`, weights: `{checkpoint}` (trained dense, '
        'evaluated training-free).', '',
        '| selection | keep | ' + ' | '.join(n for _, n in names) +
        ' | backbone ms | speed-up |',
        '|' + ' --- |' * (len(names) + 4)
    ]
    for scorer_name, keep, metrics in rows:
        values = ' | '.join(f'{metrics[key]:.3f}' if scope == 'mmdet' else
                            f'{metrics[key]:.2f}' for key, _ in names)
        lines.append(f"| {scorer_name} | {keep:.2f} | {values} | "
                     f"{metrics['backbone_ms']:.1f} | "
                     f"{dense_ms / metrics['backbone_ms']:.2f}x |")
    table = '\n'.join(lines)
    print(table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
