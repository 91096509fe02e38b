"""Draw a tracker's boxes over the event frames of one test sequence.

    python tools/analysis/visualize_tracking.py \
        configs/event_sot/sdtv3_sot_demo.py work_dirs/.../epoch_10.pth \
        [--sequence demo_test_00] [--num-frames 6] [--keep 0.56] \
        [--variants "IRToP (paper)" random] [--out strip.png]

Runs the checkpoint over every frame of the sequence (the config's test
dataset and pipeline, one frame at a time, as ``tools/test.py`` does),
densely and, for each ``--variants`` name of ``tracking_report.py``, with
that pruning at ``--keep``; then writes one picture: a row per setting, the
event frames of ``--num-frames`` evenly spaced frames (or ``--frames``)
with the ground truth (green) and that setting's box (red), the search
tokens a pruned setting stopped in block ``--block`` (default: the last)
tinted red over its search window, and prints each setting's success AUC
and precision on the sequence.
"""
import argparse
import copy
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

from mmtpspike.datasets.events.sot_crops import crop_window
from mmtpspike.evaluation.functional.ope import ope_scores
from mmtpspike.utils.launch import friendly_errors, load_config
from mmtpspike.visualization import draw_track_strip

TOOLS = osp.dirname(osp.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--sequence', help='test sequence (default: the '
                        'first)')
    parser.add_argument('--num-frames', type=int, default=6)
    parser.add_argument('--frames', type=int, nargs='+',
                        help='frame indices to draw (instead of evenly '
                        'spaced ones)')
    parser.add_argument('--keep', type=float, default=0.56)
    parser.add_argument('--variants', nargs='+', default=['IRToP (paper)'],
                        help='pruning variants of tracking_report.py')
    parser.add_argument('--block', type=int, default=-1,
                        help='transformer block whose stopped search tokens '
                        'are drawn (default: the last)')
    parser.add_argument('--max-side', type=int, default=200)
    parser.add_argument('--out', default='track_strip.png')
    return parser.parse_args(argv)


def report_variants():
    """``VARIANTS`` of ``tracking_report.py`` (one list of settings)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'tracking_report', osp.join(TOOLS, 'tracking_report.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VARIANTS


def sequence_indices(dataset, sequence: str = None) -> List[int]:
    """Sample indices of ``sequence`` (default: the first), in order."""
    names = [dataset.get_data_info(i)['sequence']
             for i in range(len(dataset))]
    sequence = sequence or names[0]
    indices = [i for i, name in enumerate(names) if name == sequence]
    if not indices:
        raise SystemExit(f'no test sequence {sequence!r}; the test set has '
                         f'{sorted(set(names))}')
    return indices


def search_tokens(model, previous_box: np.ndarray, block: int):
    """``(window, kept)`` of the last search: the window around the
    previous box and the ``[Hs, Ws]`` search tokens that ran ``block``
    (timestep 0), or None for a dense tracker."""
    maps = model.encoder.search_kept_maps() \
        if model.encoder.token_records else []
    if not maps:
        return None
    window = crop_window(torch.as_tensor(previous_box, dtype=torch.float64),
                         model.search_context)[0].tolist()
    return window, maps[block][0].cpu().numpy()


@torch.no_grad()
def track(model, dataset, indices: List[int],
          block: int) -> Dict[str, list]:
    """Predicted and GT boxes, the event frames and the stopped search
    tokens of every frame."""
    model.eval()
    out = dict(pred=[], gt=[], frames=[], tokens=[])
    for index in indices:
        data = pseudo_collate([dataset[index]])
        (sample, ) = model.test_step(data)
        out['tokens'].append(None if not out['pred'] else search_tokens(
            model, out['pred'][-1], block))
        out['pred'].append(sample.pred_box.cpu().numpy())
        out['gt'].append(np.asarray(sample.gt_box.cpu(), np.float64))
        out['frames'].append(data['inputs']['frame'][0].numpy())
    return out


def build_tracker(cfg, checkpoint: str, pruning):
    from mmengine.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.encoder.pruning = pruning
    model = MODELS.build(model_cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    from mmengine.registry import DATASETS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    indices = sequence_indices(dataset, args.sequence)
    variants = report_variants()
    unknown = set(args.variants) - set(variants)
    if unknown:
        raise SystemExit(f'unknown --variants {sorted(unknown)}; choose '
                         f'from {list(variants)}')
    settings = {'dense': None}
    settings.update({f'{name} {args.keep:.2f}':
                     dict(variants[name], keep_ratios=args.keep)
                     for name in args.variants})
    runs = {}
    for name, pruning in settings.items():
        runs[name] = track(build_tracker(cfg, args.checkpoint, pruning),
                           dataset, indices, args.block)
        scores = ope_scores(np.stack(runs[name]['pred']),
                            np.stack(runs[name]['gt']))
        print(f'{name}: success AUC {scores["success_auc"]:.3f}, precision '
              f'{scores["precision"]:.3f} over {len(indices)} frames')
    shown = args.frames or np.linspace(
        0, len(indices) - 1, args.num_frames).round().astype(int).tolist()
    dense = runs['dense']
    image = draw_track_strip(
        [dense['frames'][i] for i in shown], shown,
        np.stack([dense['gt'][i] for i in shown]),
        {name: np.stack([run['pred'][i] for i in shown])
         for name, run in runs.items()}, args.max_side,
        {name: [run['tokens'][i] for i in shown]
         for name, run in runs.items()})
    cv2.imwrite(args.out, image)
    print(f'wrote {args.out} ({image.shape[1]} x {image.shape[0]})')


if __name__ == '__main__':
    main()
