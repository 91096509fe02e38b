"""Compare search-token pruning methods on a tracking demo: one table.

    python tools/analysis/tracking_report.py \
        configs/event_sot/sdtv3_sot_demo.py --work-dir work_dirs/sot_report \
        [--checkpoint CKPT] \
        [--variants "IRToP (paper)" random "candidate elimination"] \
        [--keep 0.78 0.56] [--out table.md] [--json rows.json]

Steps: (1) train the dense tracker config (skipped with ``--checkpoint``);
(2) test the same weights densely and with each variant at each ``--keep``
ratio, training-free (the ratio of every block's search tokens; template
tokens are never stopped); (3) print one markdown table: success AUC,
precision at 20 px and normalised precision by ``OPEMetric``; the realised
keep ratio of the search tokens and the share of template tokens stopped
(0 by construction: a check), averaged over blocks and frames; tracking
speed in frames per second, measured over the whole test set in the same
process as the time spent in the model's ``test_step`` (search crop,
encoder, head, decoding; not data loading nor the metric), and its ratio to
the dense row of the same run.
"""
import argparse
import os.path as osp
import time
from typing import Dict, List, Optional

import torch

from mmtpspike.analysis.task_metrics import TASK_METRICS, test_evaluator_type
from mmtpspike.utils.launch import (build_runner, friendly_errors,
                                    load_config, train_dense, write_report)

#: name -> pruning settings on top of ``keep_ratios``
VARIANTS = {
    'IRToP (paper)': dict(scorer=dict(type='IRToPScorer')),
    'random': dict(scorer=dict(type='RandomScorer', seed=0)),
    'candidate elimination': dict(
        scorer=dict(type='CandidateEliminationScorer')),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='dense tracker config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--checkpoint', help='skip training, use these weights')
    parser.add_argument('--keep', type=float, nargs='+', default=[0.78, 0.56])
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS),
                        default=list(VARIANTS), metavar='NAME',
                        help=f'subset of: {list(VARIANTS)}')
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('--json', help='also write every row as JSON')
    return parser.parse_args(argv)


class TokenTally:
    """Kept shares of search and template tokens over every block run,
    counted as the encoder's pruner records them (frames that only set the
    template run no block and add nothing)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.search = [0, 0]    # kept, total
        self.template = [0, 0]  # stopped, total
        self.handle = None if encoder.pruner is None else \
            encoder.pruner.register_record_hook(self.add)

    def add(self, record) -> None:
        layout = self.encoder.context.require()
        template_kept, search_kept = layout.split(record.kept.flatten(1))
        self.search[0] += int(search_kept.sum())
        self.search[1] += search_kept.numel()
        self.template[0] += int((~template_kept).sum())
        self.template[1] += template_kept.numel()

    def shares(self) -> Dict[str, float]:
        if self.handle is not None:
            self.handle.remove()
        if not self.search[1]:  # dense: no records
            return dict(realised_keep=1.0, template_stopped=0.0)
        return dict(realised_keep=self.search[0] / self.search[1],
                    template_stopped=self.template[0] / self.template[1])


def timed_test(runner) -> Dict[str, float]:
    """``runner.test()`` with the time of every ``test_step`` summed and
    the token shares tallied."""
    model = runner.model
    encoder = model.encoder
    tally = TokenTally(encoder)
    step, clock = model.test_step, dict(seconds=0., frames=0)

    def timed_step(data):
        start = time.perf_counter()
        outputs = step(data)
        clock['seconds'] += time.perf_counter() - start
        clock['frames'] += len(outputs)
        return outputs

    model.test_step = timed_step
    try:
        metrics = dict(runner.test())
    finally:
        del model.test_step
    metrics.update(tally.shares())
    metrics['fps'] = clock['frames'] / max(clock['seconds'], 1e-9)
    return metrics


def evaluate(args, checkpoint: str, name: str,
             pruning: Optional[dict]) -> dict:
    cfg = load_config(args.config)
    cfg.model.encoder.pruning = pruning
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(args.work_dir, 'eval', name)
    cfg.default_hooks.logger.interval = 10**6
    return timed_test(build_runner(cfg))


def run_rows(args, checkpoint: str) -> List[dict]:
    rows = [dict(variant='dense', keep=1.0,
                 **evaluate(args, checkpoint, 'dense', None))]
    for variant in args.variants:
        for keep in args.keep:
            pruning = dict(VARIANTS[variant], keep_ratios=keep)
            name = f'{variant}_{keep}'.replace(' ', '_')
            rows.append(dict(variant=variant, keep=keep,
                             **evaluate(args, checkpoint, name, pruning)))
    return rows


def table(rows: List[dict], metric_type: str) -> str:
    names = TASK_METRICS[metric_type]
    dense_fps = rows[0]['fps']
    header = (['variant', 'keep'] + [title for _, title in names] +
              ['realised keep (search)', 'template stopped', 'FPS',
               'FPS vs dense'])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    for row in rows:
        cells = [row['variant'], f"{row['keep']:.2f}"]
        cells += [f'{row[key]:.3f}' for key, _ in names]
        cells += [f"{row['realised_keep']:.2f}",
                  f"{100 * row['template_stopped']:.0f} %",
                  f"{row['fps']:.1f}", f"{row['fps'] / dense_fps:.2f}x"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


@friendly_errors
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    metric_type = test_evaluator_type(cfg)
    checkpoint = args.checkpoint or train_dense(
        args.config, args.work_dir)
    rows = run_rows(args, checkpoint)
    text = (f'Config: `{args.config}`, dense weights: `{checkpoint}`, '
            f'{torch.get_num_threads()} thread(s).\n\n' +
            table(rows, metric_type))
    write_report(text, rows, args.out, args.json)


if __name__ == '__main__':
    main()
