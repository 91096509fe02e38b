"""Compare token-reduction methods on a demo task: one results table.

    python tools/analysis/pruning_report.py configs/det/sdtv3_coco_demo.py \
        --work-dir work_dirs/det_report --train-options train_cfg.max_epochs=48
    python tools/analysis/pruning_report.py configs/seg/sdtv3_ade20k_demo.py \
        --work-dir work_dirs/seg_report --finetune-options \
        train_cfg.max_iters=300 --finetune-ramp 150
    python tools/analysis/pruning_report.py \
        configs/event_det/sdtv3_gen1_demo.py --work-dir work_dirs/event_report \
        --variants "IRToP (paper)" random --finetune-options \
        train_cfg.max_epochs=4 train_cfg.val_interval=4

Steps: (1) train the dense config (skipped with ``--checkpoint``); (2)
evaluate the same weights with each token-reduction variant (IRToP as in the
paper and as in the public code, random, L2 norm, every pruning option of
the package and the ToMe-style merging baseline) at every ``--keep`` ratio,
training-free; (3) with ``--finetune-options``, also fine-tune the dense
weights with each variant on (keep ratio moving from 1.0 to the target by a
``RetentionScheduleHook`` over ``--finetune-ramp`` iterations) and evaluate
that; (4) print one markdown table: task metrics (the config's test
evaluator's: COCO bbox / segm mAP, mIoU / mAcc, or the Prophesee-protocol
mAP / AP50 of event configs), MACs / SOPs / energy of backbone + neck on the
first test batch (as ``complexity.py`` counts them), the realised keep
ratio, and the stopped-token share inside small / medium / large objects
and in the background (as ``object_tokens.py`` reports it, averaged over
blocks; event configs: the boxes of their labelled timestamps).
"""
import argparse
import copy
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.config import DictAction

from mmtpspike.analysis import MacCounter
from mmtpspike.analysis.complexity import energy_model_text
from mmtpspike.analysis.model_io import BackboneNeck, is_event_config
from mmtpspike.analysis.object_tokens import GROUPS, tally_dataset
from mmtpspike.analysis.task_metrics import TASK_METRICS, test_evaluator_type
from mmtpspike.utils.launch import (build_runner, friendly_errors,
                                    last_checkpoint, load_config,
                                    train_dense, write_report)

#: name -> pruning settings on top of ``keep_ratios`` (IRToP by default)
VARIANTS = {
    'IRToP (paper)': dict(scorer=dict(type='IRToPScorer')),
    'IRToP (public-code variant)': dict(
        scorer=dict(type='IRToPScorer', variant='reference')),
    'random': dict(scorer=dict(type='RandomScorer', seed=0)),
    'L2 norm': dict(scorer=dict(type='L2NormScorer')),
    'IRToP, scored after the mixer': dict(score_on='mixed'),
    'IRToP + K/V context': dict(attention_context='all'),
    'IRToP, MLP on all tokens': dict(mlp_keep_ratios=1.0),
    'IRToP + neighbour update': dict(
        restorer=dict(type='NeighbourUpdateRestorer')),
    'IRToP, stopped tokens zeroed': dict(restorer=dict(type='ZeroRestorer')),
    'IRToP dynamic (score mass = keep)': dict(dynamic=True),
    'ToMe merge': dict(reduction='merge'),
    # the speed options ('keep' stands for the row's keep ratio)
    'IRToP, mixer skipped too': dict(skip_mixer=True),
    'IRToP + conv stages': dict(conv_keep_ratios='keep'),
    'IRToP + conv tiles 4': dict(conv_keep_ratios='keep', conv_tile=4),
    'IRToP + conv tiles 8': dict(conv_keep_ratios='keep', conv_tile=8),
    'every speed option': dict(
        skip_mixer=True, conv_keep_ratios=[1.0, 'keep', 'keep']),
    'fastest (mixer skipped, conv tiles 8)': dict(
        skip_mixer=True, conv_keep_ratios='keep', conv_tile=8),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='dense demo config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--checkpoint', help='skip training, use these weights')
    parser.add_argument('--keep', type=float, nargs='+', default=[0.78, 0.56])
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS),
                        default=list(VARIANTS), metavar='NAME',
                        help=f'subset of: {list(VARIANTS)}')
    parser.add_argument('--train-options', nargs='+', action=DictAction,
                        help='config overrides for training only')
    parser.add_argument('--finetune-options', nargs='+', action=DictAction,
                        help='also fine-tune every variant with these '
                        'config overrides (e.g. train_cfg.max_iters=300)')
    parser.add_argument('--finetune-variants', nargs='+',
                        choices=list(VARIANTS), metavar='NAME',
                        help='fine-tune only these variants (default: all '
                        'of --variants)')
    parser.add_argument('--finetune-ramp', type=int, default=100,
                        help='iterations over which the keep ratio falls '
                        'from 1.0 to the target while fine-tuning')
    parser.add_argument('--diagnostic-images', type=int, default=50,
                        help='test images for the object-token shares')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--json', help='also write every row as JSON')
    return parser.parse_args(argv)


def pruning_settings(variant: str, keep: float) -> dict:
    """The ``model.backbone.pruning`` dict of a variant at a keep ratio."""
    settings = copy.deepcopy(VARIANTS[variant])
    conv = settings.get('conv_keep_ratios')
    if conv is not None:
        settings['conv_keep_ratios'] = keep if conv == 'keep' else [
            keep if ratio == 'keep' else ratio for ratio in conv]
    if settings.pop('dynamic', False):
        return dict(settings, keep_ratios=1.0, dynamic=dict(
            mass=keep, min_ratio=keep / 2, max_ratio=1.0))
    return dict(settings, keep_ratios=keep)


#: the ratios a fine-tune ramps from 1.0, and the schedule argument of each
SCHEDULED_RATIOS = (('keep_ratios', 'target'),
                    ('mlp_keep_ratios', 'mlp_target'),
                    ('conv_keep_ratios', 'conv_target'))


def finetune_config(args, checkpoint: str, name: str, pruning: dict):
    """The config that fine-tunes the dense weights with a variant on:
    every ratio the variant sets starts at 1.0 and falls to its value over
    ``--finetune-ramp`` iterations (dynamic retention runs as it is)."""
    cfg = load_config(args.config, args.finetune_options)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(args.work_dir, 'finetune', name)
    if 'dynamic' in pruning:
        cfg.model.backbone.pruning = pruning
        return cfg
    schedule = dict(type='RetentionScheduleHook', begin=0,
                    end=args.finetune_ramp)
    start = dict(pruning)
    for field, argument in SCHEDULED_RATIOS:
        if pruning.get(field) is not None:
            schedule[argument] = pruning[field]
            start[field] = 1.0
    cfg.model.backbone.pruning = start
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [schedule]
    return cfg


def finetune(args, checkpoint: str, name: str, pruning: dict) -> str:
    """Fine-tune the dense weights with a variant on; returns the last
    checkpoint."""
    cfg = finetune_config(args, checkpoint, name, pruning)
    build_runner(cfg).train()
    return last_checkpoint(cfg.work_dir)


def batch_cost(runner) -> Dict[str, float]:
    """GMACs, GSOPs, energy (mJ) of backbone + neck on the first test batch,
    and the realised keep ratio there."""
    model = runner.model
    batch = next(iter(runner.test_dataloader))
    data = model.data_preprocessor(batch, False)
    inputs = data['inputs']
    model.backbone.set_img_shapes(
        [s.metainfo['img_shape'][:2] for s in data['data_samples']],
        tuple(inputs.shape[-2:]))
    module = BackboneNeck(model)
    max_spikes = model.backbone.neuron_settings['max_spikes']
    with torch.no_grad(), MacCounter(module, max_spikes) as counter:
        module(inputs)
    records = model.backbone.token_records
    kept = sum(float((r.kept & r.valid).sum()) for r in records)
    valid = sum(float(r.valid.sum()) for r in records)
    return dict(gmacs=counter.total / 1e9, gsops=counter.sops / 1e9,
                energy_mj=counter.energy_mj(),
                realised_keep=kept / max(valid, 1.))


def object_shares(runner, cfg, num_images: int) -> Dict[str, float]:
    """Stopped-token share per object group, averaged over blocks."""
    tally = tally_dataset(runner.model, cfg, num_images)
    shares = tally.shares()
    result = {}
    for group in GROUPS:
        values = [s[group] for s in shares.values() if s[group] == s[group]]
        result[group] = sum(values) / len(values) if values else float('nan')
    return result


def evaluate(args, checkpoint: str, name: str,
             pruning: Optional[dict]) -> dict:
    """Metrics, cost and object shares of one setting."""
    cfg = load_config(args.config)
    cfg.model.backbone.pruning = pruning or dict(keep_ratios=1.0)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(args.work_dir, 'eval', name)
    cfg.default_hooks.logger.interval = 10**6
    runner = build_runner(cfg)
    metrics = dict(runner.test())
    metrics.update(batch_cost(runner))
    metrics.update(object_shares(runner, cfg, args.diagnostic_images))
    return metrics


def name_selected(variant: str, selection: Optional[List[str]]) -> bool:
    return selection is None or variant in selection


def run_rows(args, checkpoint: str) -> List[dict]:
    rows = [dict(variant='dense', keep=1.0, mode='-',
                 **evaluate(args, checkpoint, 'dense', None))]
    for variant in args.variants:
        for keep in args.keep:
            pruning = pruning_settings(variant, keep)
            name = f'{variant}_{keep}'.replace(' ', '_').replace('/', '')
            rows.append(dict(variant=variant, keep=keep, mode='training-free',
                             **evaluate(args, checkpoint, name, pruning)))
            if args.finetune_options and name_selected(
                    variant, args.finetune_variants):
                tuned = finetune(args, checkpoint, name, pruning)
                rows.append(dict(variant=variant, keep=keep,
                                 mode='fine-tuned',
                                 **evaluate(args, tuned, name + '_ft',
                                            pruning)))
    return rows


def table(rows: List[dict], metric_type: str) -> str:
    names = TASK_METRICS[metric_type]
    digits = 2 if metric_type == 'IoUMetric' else 3
    header = (['variant', 'keep', 'mode'] + [n for _, n in names] +
              ['GMACs', 'GSOPs', 'energy mJ', 'realised keep'] +
              [f'stopped {g}' for g in GROUPS])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    for row in rows:
        cells = [row['variant'], f"{row['keep']:.2f}", row['mode']]
        cells += [f'{row[key]:.{digits}f}' for key, _ in names]
        cells += [f"{row['gmacs']:.3f}", f"{row['gsops']:.3f}",
                  f"{row['energy_mj']:.4f}", f"{row['realised_keep']:.2f}"]
        cells += ['-' if row[g] != row[g] else f'{100 * row[g]:.0f} %'
                  for g in GROUPS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    metric_type = test_evaluator_type(cfg)
    checkpoint = args.checkpoint or train_dense(
        args.config, args.work_dir, args.train_options)
    rows = run_rows(args, checkpoint)
    text = (f'Config: `{args.config}`, dense weights: `{checkpoint}`. ' +
            f'Energy: {energy_model_text(is_event_config(cfg))}.\n\n' +
            table(rows, metric_type))
    write_report(text, rows, args.out, args.json)


if __name__ == '__main__':
    main()
