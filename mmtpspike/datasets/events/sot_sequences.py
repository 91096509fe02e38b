"""Single-object-tracking sequences of event cameras (FE108, VisEvent,
FELT): a sequence's annotated frame times, boxes, absent flags and events.

Every layout keeps one folder per sequence; :func:`load_sequence` reads
these files of it (``<name>`` is the folder's name):

* ``'fe108'`` (FE108, Zhang et al., ICCV 2021; DAVIS346): the events and
  APS frames in ``events.aedat4`` and one ``x,y,w,h`` box per APS frame in
  ``groundtruth_rect.txt``. A box of zero (or negative) width or height, or
  of NaN values, marks a frame without the target (FE108 has no absent
  file); such frames are counted and logged.
* ``'visevent'`` (VisEvent, Wang et al.; DAVIS346): the raw recording
  ``<name>.aedat4`` (or ``events.aedat4``), ``groundtruth.txt`` (one box
  per frame) and ``absent_label.txt`` (one 0 / 1 per frame, 1 = target
  absent). The converted ``vis_imgs`` / ``event_imgs`` folders and MATLAB
  ``.mat`` event files are not read: keep or export the ``.aedat4``.
* ``'felt'`` (FELT, Wang et al., long-term frame-event tracking;
  DAVIS346): ``<name>.aedat4`` (or ``<name>_dvs.aedat4``), ``groundtruth.txt``
  and ``absent.txt`` (or ``absent_label.txt``). The ``<name>_aps`` /
  ``<name>_dvs`` image folders are not read.

The frame times of every layout are the timestamps (``t``) of the APS
frames stored in the ``.aedat4`` file (:attr:`Aedat4Recording.frame_times_us`):
one per annotation line, strictly increasing. In VisEvent and FELT, a box
of zero / negative size or NaN values is accepted only on a frame the
absent file flags; elsewhere it is an error.

Annotation lines hold ``x, y, w, h`` (top-left corner and size in frame
pixels), separated by commas and / or white space; empty lines at the end
are ignored.
"""
import logging
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from mmengine.logging import print_log

from mmtpspike.utils.config import SetupError
from .aedat4 import Aedat4Recording
from .recordings import Recording

#: the layouts :func:`load_sequence` reads
LAYOUTS = ('fe108', 'visevent', 'felt')
#: FE108's files in a sequence folder
FE108_EVENTS_FILE = 'events.aedat4'
FE108_GT_FILE = 'groundtruth_rect.txt'
#: VisEvent's files (``{name}`` = the sequence folder's name)
VISEVENT_EVENTS_FILES = ('{name}.aedat4', 'events.aedat4')
VISEVENT_GT_FILE = 'groundtruth.txt'
VISEVENT_ABSENT_FILE = 'absent_label.txt'
#: FELT's files
FELT_EVENTS_FILES = ('{name}.aedat4', '{name}_dvs.aedat4')
FELT_GT_FILE = 'groundtruth.txt'
FELT_ABSENT_FILES = ('absent.txt', 'absent_label.txt')

#: per layout: event file candidates (first found is read), annotation
#: file, absent file candidates (empty: the layout has none)
LAYOUT_FILES = {
    'fe108': dict(events=(FE108_EVENTS_FILE, ), gt=FE108_GT_FILE,
                  absent=()),
    'visevent': dict(events=VISEVENT_EVENTS_FILES, gt=VISEVENT_GT_FILE,
                     absent=(VISEVENT_ABSENT_FILE, )),
    'felt': dict(events=FELT_EVENTS_FILES, gt=FELT_GT_FILE,
                 absent=FELT_ABSENT_FILES),
}


@dataclass
class EventSequence:
    """One annotated tracking sequence.

    Args:
        name (str): The sequence folder's name.
        width (int): Sensor width in pixels.
        height (int): Sensor height in pixels.
        frame_times_us (np.ndarray): ``[N]`` int64 annotated frame times in
            microseconds, strictly increasing.
        boxes (np.ndarray): ``[N, 4]`` float64 ``x, y, w, h`` (top-left
            corner and size in pixels), one per frame; rows of absent
            targets are kept as the dataset writes them (zero size or NaN).
        recording (Recording): The events, read by ``read(t0, t1)``.
        absent (np.ndarray, optional): ``[N]`` bool, True where the
            layout's absent file flags the target absent; None when the
            layout has no absent file.
    """
    name: str
    width: int
    height: int
    frame_times_us: np.ndarray
    boxes: np.ndarray
    recording: Recording
    absent: Optional[np.ndarray] = None


def _check_layout(layout: str) -> dict:
    """The files of ``layout``; ValueError naming the layouts otherwise."""
    if layout not in LAYOUT_FILES:
        raise ValueError(f'unknown SOT layout {layout!r}; choose one of '
                         f'{LAYOUTS}.')
    return LAYOUT_FILES[layout]


def _first_existing(folder: str, names: Tuple[str, ...], what: str,
                    layout: str) -> str:
    """The first of ``names`` (formatted with the folder's name) that
    exists in ``folder``; SetupError listing every expected path."""
    name = osp.basename(osp.normpath(folder))
    paths = [osp.join(folder, pattern.format(name=name))
             for pattern in names]
    for path in paths:
        if osp.isfile(path):
            return path
    raise SetupError(
        f'{folder}: no {what} file of the {layout!r} layout; expected '
        + ' or '.join(paths) + '. Check the sequence folder (or the '
        'layout); MATLAB .mat or image-only events are not read, keep the '
        'raw .aedat4.')


def read_boxes(path: str) -> np.ndarray:
    """Parse an annotation file of ``x, y, w, h`` lines.

    Args:
        path (str): ``groundtruth_rect.txt`` / ``groundtruth.txt``.

    Returns:
        np.ndarray: ``[N, 4]`` float64 boxes.

    Raises:
        SetupError: A line without four numbers, naming the line.
    """
    rows = _read_lines(path)
    boxes = np.zeros((len(rows), 4), np.float64)
    for index, line in enumerate(rows):
        values = line.replace(',', ' ').split()
        try:
            if len(values) != 4:
                raise ValueError
            boxes[index] = [float(value) for value in values]
        except ValueError:
            raise SetupError(
                f'{path}: line {index + 1} ({line!r}) is not four numbers '
                'x, y, w, h; fix the annotation file.') from None
    return boxes


def read_absent(path: str) -> np.ndarray:
    """Parse an absent file (one 0 / 1 per line, 1 = target absent).

    Returns:
        np.ndarray: ``[N]`` bool flags.

    Raises:
        SetupError: A line other than 0 or 1, naming the line.
    """
    rows = _read_lines(path)
    flags = np.zeros(len(rows), bool)
    for index, line in enumerate(rows):
        value = line.strip()
        if value not in ('0', '1'):
            raise SetupError(
                f'{path}: line {index + 1} ({line!r}) is not 0 or 1; fix '
                'the absent file.')
        flags[index] = value == '1'
    return flags


def _read_lines(path: str) -> List[str]:
    """The lines of a text file without the empty lines at its end."""
    with open(path, encoding='utf-8') as file:
        lines = file.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _check_frame_times(path: str, times: np.ndarray, num_boxes: int,
                       gt_path: str) -> None:
    """Raise unless there is one strictly increasing frame time a box."""
    if len(times) != num_boxes:
        raise SetupError(
            f'{gt_path}: {num_boxes} annotation lines but {path} holds '
            f'{len(times)} frame timestamps; one box per APS frame is '
            'needed. Fix the annotation file or use the matching event '
            'file.')
    steps = np.flatnonzero(np.diff(times) <= 0)
    if len(steps):
        index = int(steps[0]) + 1
        raise SetupError(
            f'{path}: frame timestamps are not increasing at frame {index} '
            f'({times[index - 1]} then {times[index]} us); the frame '
            'stream is corrupt, export the recording again.')


def _check_empty_boxes(gt_path: str, boxes: np.ndarray,
                       absent: Optional[np.ndarray], layout: str) -> None:
    """Count and log the boxes of zero / negative size or NaN values; in a
    layout with absent flags, raise for one on a frame not flagged."""
    empty = ~(np.all(np.isfinite(boxes), axis=1)
              & (boxes[:, 2] > 0) & (boxes[:, 3] > 0))
    if not empty.any():
        return
    if absent is not None:
        unflagged = np.flatnonzero(empty & ~absent)
        if len(unflagged):
            index = int(unflagged[0])
            raise SetupError(
                f'{gt_path}: {len(unflagged)} box(es) of zero / negative '
                f'size or NaN on frames the absent file does not flag '
                f'(first: line {index + 1}, {boxes[index].tolist()}); the '
                f'{layout!r} layout marks absent targets in its absent '
                'file. Fix the box or the absent flag.')
    print_log(
        f'{gt_path}: {int(empty.sum())} of {len(boxes)} box(es) have zero / '
        'negative size or NaN values; their frames are taken as target '
        'absent.', 'current', level=logging.WARNING)


def load_sequence(path: str, layout: str) -> EventSequence:
    """Read one sequence folder of ``layout`` (see the module docstring for
    the files each layout uses).

    Args:
        path (str): The sequence folder.
        layout (str): One of :data:`LAYOUTS`.

    Returns:
        EventSequence: Frame times from the ``.aedat4`` frames, boxes,
        absent flags (VisEvent, FELT) and the recording, decoded whole.

    Raises:
        ValueError: An unknown layout.
        SetupError: A missing file (naming the expected paths), annotation
            and frame counts that differ, frame times that do not
            increase, or an empty box the layout does not mark absent.
    """
    files = _check_layout(layout)
    path = str(path)
    if not osp.isdir(path):
        raise SetupError(f'{path}: no such sequence folder ({layout!r} '
                         'layout).')
    gt_path = _first_existing(path, (files['gt'], ), 'annotation', layout)
    events_path = _first_existing(path, files['events'], 'events', layout)
    boxes = read_boxes(gt_path)
    absent = None
    if files['absent']:
        absent_path = _first_existing(path, files['absent'], 'absent',
                                      layout)
        absent = read_absent(absent_path)
        if len(absent) != len(boxes):
            raise SetupError(
                f'{absent_path}: {len(absent)} lines but {gt_path} has '
                f'{len(boxes)}; one flag per annotated frame is needed.')
    recording = Aedat4Recording(events_path)
    times = recording.frame_times_us
    _check_frame_times(events_path, times, len(boxes), gt_path)
    _check_empty_boxes(gt_path, boxes, absent, layout)
    return EventSequence(name=osp.basename(osp.normpath(path)),
                         width=recording.width, height=recording.height,
                         frame_times_us=times, boxes=boxes,
                         recording=recording, absent=absent)


def find_sequences(root: str, layout: str,
                   split: Optional[str] = None) -> List[str]:
    """The sequence folders of a dataset: the folders directly under
    ``root`` (or ``root/split``) that hold the layout's annotation file,
    sorted. Other folders are counted and logged.

    Args:
        root (str): Dataset root.
        layout (str): One of :data:`LAYOUTS`.
        split (str, optional): A sub-folder of ``root`` holding the split's
            sequences (e.g. ``'train'`` / ``'test'`` of FE108,
            ``'train_subset'`` / ``'test_subset'`` of VisEvent).

    Returns:
        list[str]: Sequence folder paths.

    Raises:
        ValueError: An unknown layout.
        SetupError: The folder does not exist.
    """
    files = _check_layout(layout)
    folder = str(root) if split is None else osp.join(str(root), split)
    if not osp.isdir(folder):
        raise SetupError(
            f'{folder}: no such folder; the {layout!r} dataset root (with '
            f'split {split!r}) should hold one folder per sequence.')
    sequences, others = [], []
    for name in sorted(os.listdir(folder)):
        entry = osp.join(folder, name)
        if not osp.isdir(entry):
            continue
        if osp.isfile(osp.join(entry, files['gt'])):
            sequences.append(entry)
        else:
            others.append(name)
    if others:
        print_log(
            f'{folder}: {len(others)} folder(s) without {files["gt"]} are '
            f'not {layout!r} sequences and are left out: {others[:5]}'
            + (' ...' if len(others) > 5 else ''), 'current',
            level=logging.WARNING)
    return sequences
