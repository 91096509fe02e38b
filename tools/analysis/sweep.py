"""Training-free sweep of IRToP weights / window and of per-stage ratios.

    # scorer settings (w_s, w_t, k) at a fixed keep ratio
    python tools/analysis/sweep.py CONFIG CHECKPOINT --keep 0.56 \
        --spatial-weights 0.5 1 2 --temporal-weights 0 1 --windows 3 5 7
    # per-stage keep ratios under a budget of 80 % of the dense MACs
    python tools/analysis/sweep.py CONFIG CHECKPOINT --budget 0.8 \
        --budget-on macs --stage-ratios 0.4 0.6 0.8 1.0

Every setting is evaluated with the config's own test evaluator (its main
metric: COCO bbox mAP, mIoU, or the Prophesee-protocol mAP of event configs)
on the first ``--num-images`` images (event configs: samples) of its test
set, with one runner whose pruner is re-configured between runs. The budget
search measures the cost of each ratio combination (MACs or SOPs of
backbone + neck on the first test batch) and evaluates only those within the
budget. The tool prints the table, the best setting and what the search
itself cost (evaluations and wall time), which the paper did not report for
its hand-set ratios.
"""
import argparse
import json
import time

import torch
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from mmtpspike.analysis import MacCounter
from mmtpspike.analysis.model_io import BackboneNeck, is_prunable
from mmtpspike.analysis.sweep import (best_row, markdown_table, ratio_grid,
                                      scorer_grid)
from mmtpspike.analysis.task_metrics import task_metrics
from mmtpspike.models.pruning.early_stopping import _build
from mmtpspike.registry import TOKEN_SCORERS
from mmtpspike.utils.launch import (SetupError, build_runner,
                                    check_data_paths, friendly_errors,
                                    load_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="weights, or 'none'")
    parser.add_argument('--num-images', type=int, default=50)
    parser.add_argument('--keep', type=float, default=0.56,
                        help='keep ratio of the scorer sweep')
    parser.add_argument('--spatial-weights', type=float, nargs='+',
                        default=[1.0])
    parser.add_argument('--temporal-weights', type=float, nargs='+',
                        default=[1.0])
    parser.add_argument('--windows', type=int, nargs='+', default=[3])
    parser.add_argument('--budget', type=float,
                        help='search per-stage ratios within this share of '
                        'the dense cost instead of sweeping the scorer')
    parser.add_argument('--budget-on', choices=['macs', 'sops'],
                        default='macs')
    parser.add_argument('--stage-ratios', type=float, nargs='+',
                        default=[0.4, 0.6, 0.8, 1.0])
    parser.add_argument('--out', help='also write the rows as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def build_eval_runner(args):
    """One runner on the test subset, with a pruned backbone."""
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.default_scope)
    if not is_prunable(cfg.model.backbone):
        raise SetupError(f'the sweep needs a prunable backbone (SDTV3, '
                         f'QKFormer, ...), got '
                         f'{cfg.model.backbone.get("type")!r}')
    if not cfg.model.backbone.get('pruning'):
        cfg.model.backbone.pruning = dict(keep_ratios=1.0)
    cfg.model.backbone.init_cfg = None
    check_data_paths(cfg, ('test_dataloader', ))
    cfg.test_dataloader.dataset.indices = args.num_images
    cfg.load_from = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    cfg.work_dir = cfg.get('work_dir') or 'work_dirs/sweep'
    cfg.default_hooks.logger.interval = 10**6
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h['type'] == 'PaddingAwarePruningHook']
    return build_runner(cfg), cfg


def first_batch(runner):
    """Inputs of the first test batch, preprocessed, with image shapes."""
    batch = next(iter(runner.test_dataloader))
    data = runner.model.data_preprocessor(batch, False)
    shapes = [s.metainfo['img_shape'][:2] for s in data['data_samples']]
    return data['inputs'], shapes


def measure_cost(runner, ratios, on: str, inputs, shapes) -> float:
    """MACs or SOPs of backbone + neck at per-stage ``ratios``."""
    backbone = runner.model.backbone
    backbone.set_keep_ratios(list(ratios))
    module = BackboneNeck(runner.model)
    max_spikes = backbone.neuron_settings['max_spikes']
    backbone.set_img_shapes(shapes, tuple(inputs.shape[-2:]))
    with torch.no_grad(), MacCounter(module, max_spikes) as counter:
        module(inputs)
    return float(counter.total if on == 'macs' else counter.sops)


def evaluate(runner, metric: str) -> float:
    return float(runner.test()[metric])


def scorer_sweep(args, runner, metric):
    backbone = runner.model.backbone
    backbone.set_keep_ratios(args.keep)
    rows = []
    for scorer in scorer_grid(args.spatial_weights, args.temporal_weights,
                              args.windows, backbone.num_timesteps):
        backbone.pruner.scorer = _build(TOKEN_SCORERS, scorer,
                                        'pruning.scorer')
        rows.append(dict(w_s=scorer['spatial_weight'],
                         w_t=scorer['temporal_weight'],
                         k=scorer['window_size'], keep=args.keep,
                         **{metric: evaluate(runner, metric)}))
    return rows


def budget_search(args, runner, metric):
    backbone = runner.model.backbone
    inputs, shapes = first_batch(runner)
    num_stages = len(backbone.pruner.blocks_per_stage)
    dense = measure_cost(runner, [1.0] * num_stages, args.budget_on, inputs,
                         shapes)
    fits = ratio_grid(
        args.stage_ratios, num_stages,
        lambda r: measure_cost(runner, r, args.budget_on, inputs, shapes),
        dense, args.budget)
    if not fits:
        raise SetupError(f'no combination of --stage-ratios '
                         f'{args.stage_ratios} fits {args.budget:.0%} of '
                         f'the dense {args.budget_on}; allow lower ratios')
    rows = []
    for ratios, share in fits:
        backbone.set_keep_ratios(list(ratios))
        rows.append(dict(ratios=list(ratios),
                         **{f'{args.budget_on}_share': share,
                            metric: evaluate(runner, metric)}))
    return rows


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    runner, cfg = build_eval_runner(args)
    metric = task_metrics(cfg)[0][0]
    rows = budget_search(args, runner, metric) if args.budget else \
        scorer_sweep(args, runner, metric)
    elapsed = time.perf_counter() - start
    print(markdown_table(list(rows[0]), [list(r.values()) for r in rows]))
    best = best_row(rows, metric)
    print(f'\nbest: {best}')
    print(f'search cost: {len(rows)} evaluations of {args.num_images} '
          f'images, {elapsed:.1f} s wall time')
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(dict(rows=rows, best=best, evaluations=len(rows),
                           seconds=elapsed), file, indent=1)


if __name__ == '__main__':
    main()
