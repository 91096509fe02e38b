"""Event-based single-object tracking: training pairs and test frames of
FE108 / VisEvent / FELT-layout sequences."""
import logging
from typing import List, Optional, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.registry import DATASETS

from mmtpspike.utils.config import SetupError
from .sot_sequences import find_sequences, load_sequence


def present_frames(boxes: np.ndarray,
                   absent: Optional[np.ndarray] = None) -> np.ndarray:
    """``[N]`` bool: frames whose target is present, i.e. not flagged
    ``absent`` and with a finite box of positive width and height.

    Args:
        boxes (np.ndarray): ``[N, 4]`` ``(x, y, w, h)``.
        absent (np.ndarray, optional): ``[N]`` bool flags.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    present = np.isfinite(boxes).all(1)
    present[present] = (boxes[present, 2] > 0) & (boxes[present, 3] > 0)
    if absent is not None:
        present &= ~np.asarray(absent, dtype=bool)
    return present


def boxes_in_frame(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[N]`` bool: boxes that share some area with the ``width x height``
    frame (NaN rows are False)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    with np.errstate(invalid='ignore'):
        return ((boxes[:, 0] < width) & (boxes[:, 0] + boxes[:, 2] > 0) &
                (boxes[:, 1] < height) & (boxes[:, 1] + boxes[:, 3] > 0))


def frame_windows(frame_times_us: np.ndarray,
                  first_window_us: Optional[int] = None) -> np.ndarray:
    """``[N, 2]`` int64 ``(t_prev, t)``: frame ``i`` shows the events of
    ``(t_{i-1}, t_i]``; the first frame those of the ``first_window_us``
    before it (default: the first frame interval).

    Raises:
        ValueError: One frame and no ``first_window_us``, or times that do
            not increase.
    """
    times = np.asarray(frame_times_us, dtype=np.int64)
    if len(times) > 1 and (np.diff(times) <= 0).any():
        raise ValueError('frame times must increase')
    if first_window_us is None:
        if len(times) < 2:
            raise ValueError(
                'a sequence of one frame has no frame interval: set '
                'first_window_us')
        first_window_us = int(times[1] - times[0])
    previous = np.concatenate([[times[0] - first_window_us], times[:-1]])
    return np.stack([previous, times], 1)


@DATASETS.register_module()
class EventSOTDataset(BaseDataset):
    """Event-camera single-object tracking sequences: training pairs or
    test frames.

    The sequences of a split are found by
    :func:`~.sot_sequences.find_sequences` and read by
    :func:`~.sot_sequences.load_sequence` (annotations and frame times
    only: no events are read here; each DataLoader worker opens the
    recordings it needs, see ``LoadSOTEventFrames``). Frame ``i`` stands for
    the events of ``(t_{i-1}, t_i]`` between consecutive annotated frame
    times (the first frame: the ``first_window_us`` before it, by default
    one frame interval).

    A frame's target is *absent* when the sequence flags it or its box is
    not finite or has zero width or height; it is *outside* when its box
    shares no area with the frame. Both are counted per split and logged.

    Training (``test_mode=False``): ``samples_per_epoch`` pairs drawn once,
    by a generator seeded with ``seed``: a template frame ``i`` uniformly
    among the present frames of all sequences, then a search frame ``j``
    uniformly among the present, inside frames of the same sequence with
    ``|j - i| <= max_gap`` (``j = i`` included). A template drawn outside
    the frame skips its pair (counted in :attr:`num_skipped_pairs`, logged)
    and another is drawn. The same pairs serve every epoch; the crops'
    jitter differs. Data info: ``sequence``, ``sequence_path``, ``layout``,
    ``height``, ``width``, ``num_frames``, ``template_frame``,
    ``search_frame``, ``template_box`` / ``search_box`` (``[x, y, w, h]``,
    frame pixels), ``template_window_us`` / ``search_window_us``
    (``(t_prev, t)``) and ``frame_roles`` ``('template', 'search')``.

    Test (``test_mode=True``): one sample per annotated frame, sequence by
    sequence, frames in order (what ``SequenceSampler`` needs). Data info:
    ``sequence``, ``sequence_path``, ``layout``, ``height``, ``width``,
    ``num_frames``, ``frame_index``, ``ori_shape`` ``(H, W)``, ``gt_box``
    (``[x, y, w, h]`` frame pixels, NaN when absent), ``frame_window_us``
    and ``frame_roles`` ``('frame',)``.

    Args:
        data_root (str): Dataset root.
        layout (str): ``'fe108'``, ``'visevent'`` or ``'felt'``.
        split (str, optional): The split, as ``find_sequences`` takes it
            (FE108: the folder ``train`` / ``test`` under ``data_root``).
        max_gap (int): Largest ``|j - i|`` of a training pair. Default: 50.
        samples_per_epoch (int): Training pairs. Default: 1000.
        seed (int): Seed of the pair draw. Default: 0.
        first_window_us (int, optional): Events shown by each sequence's
            first frame. Default: None (its first frame interval).
        **kwargs: Other arguments of mmengine's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``lazy_init``, ...).
    """
    METAINFO = dict(classes=('target', ))

    def __init__(self,
                 data_root: str = '',
                 layout: str = 'fe108',
                 split: Optional[str] = None,
                 max_gap: int = 50,
                 samples_per_epoch: int = 1000,
                 seed: int = 0,
                 first_window_us: Optional[int] = None,
                 **kwargs) -> None:
        if max_gap < 0 or samples_per_epoch < 1:
            raise ValueError(
                f'EventSOTDataset needs max_gap >= 0 and samples_per_epoch '
                f'>= 1, got {max_gap} and {samples_per_epoch}')
        self.layout = layout
        self.split = split
        self.max_gap = max_gap
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.first_window_us = first_window_us
        #: frames of the split whose target is absent
        self.num_absent_frames = 0
        #: frames whose target box lies outside the frame
        self.num_outside_frames = 0
        #: training pairs skipped because their template was outside
        self.num_skipped_pairs = 0
        super().__init__(data_root=data_root, **kwargs)

    def sequence_paths(self) -> List[str]:
        """The split's sequences.

        Raises:
            SetupError: The split holds no sequence.
        """
        paths = find_sequences(self.data_root, self.layout, self.split)
        if not paths:
            raise SetupError(
                f'{type(self).__name__}: no {self.layout} sequence in '
                f'{self.data_root!r} (split {self.split!r}); set data_root '
                'and split to the folder of the sequences '
                '(docs/event_tracking.md)')
        return list(paths)

    def load_data_list(self) -> List[dict]:
        """Training pairs or test frames (see the class docstring)."""
        sequences = [self._load(path) for path in self.sequence_paths()]
        self._log_counts(sequences)
        if self.test_mode:
            return [info for sequence in sequences
                    for info in self._test_frames(sequence)]
        return self._draw_pairs(sequences)

    def _load(self, path: str) -> dict:
        """Annotations, windows and frame flags of one sequence."""
        sequence = load_sequence(path, self.layout)
        boxes = np.asarray(sequence.boxes, dtype=np.float64)
        present = present_frames(boxes, getattr(sequence, 'absent', None))
        inside = present & boxes_in_frame(boxes, sequence.height,
                                          sequence.width)
        try:
            windows = frame_windows(sequence.frame_times_us,
                                    self.first_window_us)
        except ValueError as error:
            raise SetupError(f'{path}: {error}') from None
        if len(windows) != len(boxes):
            raise SetupError(
                f'{path}: {len(windows)} frame times but {len(boxes)} boxes: '
                'the annotation needs one box per frame')
        return dict(path=path, name=sequence.name, height=sequence.height,
                    width=sequence.width, boxes=boxes, present=present,
                    inside=inside, windows=windows)

    def _log_counts(self, sequences: List[dict]) -> None:
        """Count and log the absent and outside frames of the split."""
        self.num_absent_frames = int(
            sum((~seq['present']).sum() for seq in sequences))
        self.num_outside_frames = int(
            sum((seq['present'] & ~seq['inside']).sum() for seq in sequences))
        if self.num_absent_frames or self.num_outside_frames:
            print_log(
                f'{type(self).__name__} ({self.data_root}, split '
                f'{self.split}): {self.num_absent_frames} frame(s) without '
                f'the target, {self.num_outside_frames} with its box outside '
                'the frame; neither is drawn into training pairs',
                'current', level=logging.WARNING)

    @staticmethod
    def _common(seq: dict) -> dict:
        return dict(sequence=seq['name'], sequence_path=seq['path'],
                    height=seq['height'], width=seq['width'],
                    num_frames=len(seq['boxes']))

    def _test_frames(self, seq: dict) -> List[dict]:
        """One data info per annotated frame, in order."""
        infos = []
        for index, (box, window) in enumerate(zip(seq['boxes'],
                                                  seq['windows'])):
            gt_box = box if seq['present'][index] else np.full(4, np.nan)
            infos.append(dict(
                self._common(seq), layout=self.layout, frame_index=index,
                ori_shape=(seq['height'], seq['width']),
                gt_box=[float(v) for v in gt_box],
                frame_window_us=_window(window), frame_roles=('frame', )))
        return infos

    def _draw_pairs(self, sequences: List[dict]) -> List[dict]:
        """``samples_per_epoch`` training pairs (see the class docstring)."""
        templates = [(s, int(i)) for s, seq in enumerate(sequences)
                     for i in np.flatnonzero(seq['present'])]
        if not any(seq['inside'].any() for seq in sequences):
            raise SetupError(
                f'{type(self).__name__}: no frame of {self.data_root!r} '
                f'(split {self.split!r}) shows its target inside the frame: '
                'nothing to train on; check the annotations')
        rng = np.random.default_rng(self.seed)
        pairs, skipped = [], 0
        while len(pairs) < self.samples_per_epoch:
            s, i = templates[int(rng.integers(len(templates)))]
            seq = sequences[s]
            if not seq['inside'][i]:
                skipped += 1
                continue
            low = max(0, i - self.max_gap)
            candidates = low + np.flatnonzero(
                seq['inside'][low:i + self.max_gap + 1])
            j = int(candidates[int(rng.integers(len(candidates)))])
            pairs.append(self._pair(seq, i, j))
        self.num_skipped_pairs = skipped
        if skipped:
            print_log(
                f'{type(self).__name__}: skipped {skipped} drawn pair(s) '
                'whose template box lies outside the frame (drew others)',
                'current', level=logging.WARNING)
        return pairs

    def _pair(self, seq: dict, template: int, search: int) -> dict:
        """The data info of one training pair."""
        return dict(
            self._common(seq), layout=self.layout,
            template_frame=template, search_frame=search,
            template_box=[float(v) for v in seq['boxes'][template]],
            search_box=[float(v) for v in seq['boxes'][search]],
            template_window_us=_window(seq['windows'][template]),
            search_window_us=_window(seq['windows'][search]),
            frame_roles=('template', 'search'))


def _window(window: np.ndarray) -> Tuple[int, int]:
    """``(t_prev, t)`` as Python ints."""
    return int(window[0]), int(window[1])
