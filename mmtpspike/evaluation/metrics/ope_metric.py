"""One-pass evaluation (OPE) of single-object tracking as an mmengine
metric: success AUC, precision at 20 px and normalised precision over whole
sequences (definitions in :mod:`mmtpspike.evaluation.functional.ope`)."""
import os
import os.path as osp
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.dist import (all_gather_object, broadcast_object_list,
                           is_main_process)
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.registry import METRICS

from mmtpspike.datasets.events.file_output import (check_writable,
                                                   written_in_place)
from mmtpspike.evaluation.functional.ope import ope_scores, summarise_curves

#: returned keys (prefixed ``sot/``), main metric first
METRIC_KEYS = ('success_auc', 'precision', 'norm_precision')
#: keys each data sample needs
SAMPLE_KEYS = ('sequence', 'frame_index', 'num_frames', 'gt_box', 'pred_box')
#: ways of averaging over sequences
AVERAGES = ('sequence', 'frame')


@METRICS.register_module()
class OPEMetric(BaseMetric):
    """Success AUC, precision and normalised precision of a tracker.

    Each data sample is one test frame of a sequence. After collection from
    all ranks, every sequence must be complete: frames ``0 ..
    num_frames - 1`` exactly once. Per sequence, the frames are ordered and
    scored with :func:`~mmtpspike.evaluation.functional.ope.ope_scores`:
    frames whose ground truth is NaN or empty (target absent) are not
    scored; the first frame (the initialisation) is scored as a perfect
    prediction when ``score_first_frame`` (OTB, LaSOT, pytracking: their
    toolkits overwrite the first prediction with the ground truth) and left
    out otherwise (GOT-10k). Sequences without a scored frame are skipped.

    The overall numbers come from the curves averaged over sequences
    (``average='sequence'``: OTB, LaSOT, got10k ``ExperimentOTB``,
    pytracking) or from all scored frames pooled (``average='frame'``:
    GOT-10k's own benchmark).

    Args:
        score_first_frame (bool): Score the first frame as the ground truth
            (OTB). Default: True.
        average (str): ``'sequence'`` or ``'frame'``. Default:
            ``'sequence'``.
        outfile_prefix (str, optional): Directory for one
            ``<sequence>.txt`` per sequence (one ``x,y,w,h`` line per
            frame, the predictions as given, ``%.3f``, comma-separated as
            got10k writes and reads; pytracking reads commas too) and
            ``<sequence>_time.txt`` (one time in seconds per frame) when
            every frame of the sequence has ``pred_time``. Default: None.
        overwrite (bool): Replace existing result files. Default: False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Default: ``'cpu'``.
        prefix (str, optional): Metric name prefix; None gives ``'sot'``.

    Data samples (``TrackDataSample`` dicts) carry ``sequence`` (str),
    ``frame_index`` (int), ``num_frames`` (int), ``gt_box`` (``[4]`` xywh,
    frame pixels, NaN when the target is absent), ``pred_box`` (``[4]``
    xywh, frame pixels) and optionally ``pred_score`` and ``pred_time``
    (seconds spent on the frame).
    """
    default_prefix: Optional[str] = 'sot'

    def __init__(self,
                 score_first_frame: bool = True,
                 average: str = 'sequence',
                 outfile_prefix: Optional[str] = None,
                 overwrite: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if average not in AVERAGES:
            raise ValueError(f'OPEMetric: average={average!r}; choose one '
                             f'of {AVERAGES}')
        self.score_first_frame = score_first_frame
        self.average = average
        self.outfile_prefix = outfile_prefix
        self.overwrite = overwrite

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Keep each frame's boxes as numpy.

        Args:
            data_batch (dict): The batch from the dataloader (unused).
            data_samples (Sequence): ``TrackDataSample`` s or their dicts.

        Raises:
            ValueError: A sample lacks a key of :data:`SAMPLE_KEYS`.
        """
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            missing = [key for key in SAMPLE_KEYS if key not in sample]
            if missing:
                raise ValueError(
                    f'OPEMetric: data samples lack {missing}: pack them in '
                    'the test pipeline and set pred_box in the tracker')
            time = sample.get('pred_time')
            self.results.append(
                dict(sequence=str(sample['sequence']),
                     frame_index=int(sample['frame_index']),
                     num_frames=int(sample['num_frames']),
                     gt_box=_numpy_box(sample['gt_box']),
                     pred_box=_numpy_box(sample['pred_box']),
                     pred_time=None if time is None else float(time)))

    def evaluate(self, size: int) -> dict:
        """Gather every rank's frames whole, then score on the main rank.

        Tracking is tested with
        :class:`~mmtpspike.datasets.samplers.SequenceSampler`, which gives
        each rank whole sequences and so different numbers of frames.
        mmengine's ``collect_results`` assumes equal, padded shares: it
        interleaves the ranks' lists and cuts the result at ``size``, which
        would drop frames here. Every rank's list is gathered whole instead
        (nothing is padded, so nothing is cut); a frame given twice (e.g.
        by a sampler that pads) is an error of :meth:`compute_metrics`.

        Args:
            size (int): Frames of the test set (checked in the log).

        Returns:
            dict: The metrics, on every rank.
        """
        parts = all_gather_object(self.results)
        metrics = [None]
        if is_main_process():
            results = [result for part in parts for result in part]
            if len(results) != size:
                MMLogger.get_current_instance().warning(
                    f'OPEMetric got {len(results)} frames from all ranks for '
                    f'a test set of {size}')
            metrics = [{f'{self.prefix}/{key}': value for key, value in
                        self.compute_metrics(results).items()}]
        broadcast_object_list(metrics)
        self.results.clear()
        return metrics[0]

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Check the sequences, score them and write the result files.

        Args:
            results (list[dict]): What :meth:`process` kept, all ranks.

        Returns:
            dict[str, float]: ``success_auc``, ``precision`` and
            ``norm_precision`` in [0, 1].

        Raises:
            ValueError: A sequence with missing or repeated frames, or no
                frame scored in any sequence.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        sequences = complete_sequences(results)
        if self.outfile_prefix is not None:
            self._write(sequences)
        scores, skipped = {}, []
        for name, frames in sequences.items():
            gt = np.stack([frame['gt_box'] for frame in frames])
            pred = np.stack([frame['pred_box'] for frame in frames])
            if self.score_first_frame:
                pred[0] = gt[0]
            else:
                gt[0] = np.nan
            try:
                scores[name] = ope_scores(pred, gt)
            except ValueError:
                skipped.append(name)
        if not scores:
            raise ValueError('OPEMetric: no frame of any sequence has a '
                             'ground-truth box to score')
        summary = self._summary(list(scores.values()))
        logger.info(self._report(sequences, scores, skipped, summary))
        return dict(success_auc=summary['success_auc'],
                    precision=summary['precision'],
                    norm_precision=summary['normalised_precision'])

    def _summary(self, scores: List[dict]) -> dict:
        """The overall numbers from the sequences' curves: their mean, or
        weighted by scored frames (pooling the frames)."""
        weights = None
        if self.average == 'frame':
            weights = [score['num_frames'] for score in scores]
        curves = [
            np.average([score[name] for score in scores], axis=0,
                       weights=weights)
            for name in ('success_curve', 'precision_curve',
                         'normalised_precision_curve')
        ]
        return summarise_curves(*curves)

    def _report(self, sequences: dict, scores: dict, skipped: list,
                summary: dict) -> str:
        """A table of the numbers in percent and what was scored."""
        first = ('first frames scored as the ground truth (OTB)'
                 if self.score_first_frame else
                 'first frames not scored (GOT-10k)')
        rows = [('Success AUC', summary['success_auc']),
                ('Precision @20px', summary['precision']),
                ('Norm. precision @0.2', summary['normalised_precision'])]
        lines = [
            f'OPE over {len(scores)} of {len(sequences)} sequences, '
            f'{sum(s["num_frames"] for s in scores.values())} of '
            f'{sum(len(f) for f in sequences.values())} frames scored '
            f'({first}; frames with NaN / empty ground truth skipped; '
            f'{self.average} average)'
        ]
        if skipped:
            lines.append(f'sequences without a scored frame: {skipped}')
        lines += [f'{title:<22}| {100 * value:6.2f}' for title, value in rows]
        return '\n'.join(lines)

    def _write(self, sequences: Dict[str, List[dict]]) -> None:
        """``<outfile_prefix>/<sequence>.txt`` (and ``_time.txt``)."""
        os.makedirs(self.outfile_prefix, exist_ok=True)
        files = {}
        for name, frames in sequences.items():
            base = osp.join(self.outfile_prefix, name)
            files[f'{base}.txt'] = '\n'.join(
                ','.join(f'{v:.3f}' for v in frame['pred_box'])
                for frame in frames)
            times = [frame['pred_time'] for frame in frames]
            if all(time is not None for time in times):
                files[f'{base}_time.txt'] = '\n'.join(
                    f'{time:.8f}' for time in times)
        for path in files:
            check_writable(path, self.overwrite)
        for path, text in files.items():
            with written_in_place(path) as partial:
                with open(partial, 'w') as f:
                    f.write(text + '\n')
        MMLogger.get_current_instance().info(
            f'OPEMetric: wrote {len(sequences)} sequences\' boxes to '
            f'{self.outfile_prefix}')


def _numpy_box(box) -> np.ndarray:
    """``[4]`` float64 numpy of a tensor, array or list."""
    if hasattr(box, 'detach'):
        box = box.detach().cpu().numpy()
    return np.asarray(box, dtype=np.float64).reshape(4)


def complete_sequences(results: List[dict]) -> Dict[str, List[dict]]:
    """Group frames by sequence, in frame order, sequences sorted by name.

    Raises:
        ValueError: A sequence whose frames are not ``0 .. num_frames - 1``
            exactly once, or whose samples disagree on ``num_frames``.
    """
    grouped = defaultdict(list)
    for result in results:
        grouped[result['sequence']].append(result)
    sequences = {}
    for name in sorted(grouped):
        frames = sorted(grouped[name], key=lambda f: f['frame_index'])
        lengths = sorted({frame['num_frames'] for frame in frames})
        if len(lengths) > 1:
            raise ValueError(f'OPEMetric: sequence {name!r} has samples with '
                             f'num_frames {lengths}: they must agree')
        counts = Counter(frame['frame_index'] for frame in frames)
        missing = sorted(set(range(lengths[0])) - set(counts))
        repeated = sorted(i for i, count in counts.items() if count > 1)
        outside = sorted(i for i in counts if not 0 <= i < lengths[0])
        problems = [
            f'{what} {_brief(indices)}'
            for what, indices in (('missing frames', missing),
                                  ('repeated frames', repeated),
                                  (f'frames outside 0..{lengths[0] - 1}',
                                   outside)) if indices
        ]
        if problems:
            raise ValueError(
                f'OPEMetric: sequence {name!r} ({lengths[0]} frames) is not '
                f'complete: {"; ".join(problems)}. Evaluate every frame '
                'once (SequenceSampler keeps sequences whole per rank; the '
                'evaluator\'s size must be the number of frames)')
        sequences[name] = frames
    return sequences


def _brief(indices: List[int], most: int = 10) -> str:
    """The first ``most`` indices, and how many more."""
    more = f' and {len(indices) - most} more' if len(indices) > most else ''
    return f'{indices[:most]}{more}'
