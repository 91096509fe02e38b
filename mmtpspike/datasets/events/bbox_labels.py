"""Prophesee box labels, ``<name>_bbox.npy`` beside ``<name>_td.dat``.

Two dtypes are found in the wild: :data:`BBOX_DTYPE` (``t``, ...,
``class_confidence``) and the older one with ``ts`` and ``confidence``
(:data:`LEGACY_BBOX_DTYPE`, e.g. Gen1). Both load as :data:`BBOX_DTYPE`.
Boxes are ``x, y`` (top-left) and ``w, h`` in sensor pixels.
"""
import os.path as osp

import numpy as np

from mmtpspike.utils.config import SetupError
from .file_output import check_writable, written_in_place

#: the dtype boxes are loaded as
BBOX_DTYPE = np.dtype([('t', '<i8'), ('x', '<f4'), ('y', '<f4'), ('w', '<f4'),
                       ('h', '<f4'), ('class_id', '<u4'),
                       ('track_id', '<u4'), ('class_confidence', '<f4')])
#: the older dtype (Gen1 files): ``ts`` and ``confidence``
LEGACY_BBOX_DTYPE = np.dtype([('ts', '<u8'), ('x', '<f4'), ('y', '<f4'),
                              ('w', '<f4'), ('h', '<f4'), ('class_id', 'u1'),
                              ('confidence', '<f4'), ('track_id', '<u4')])
#: old field name -> field name of :data:`BBOX_DTYPE`
LEGACY_FIELD_NAMES = {'ts': 't', 'confidence': 'class_confidence'}
#: endings of recording file names, each replaced by ``LABEL_SUFFIX``
RECORDING_SUFFIXES = ('_td.dat.h5', '_td.dat', '_td.h5')
LABEL_SUFFIX = '_bbox.npy'


def load_bbox_npy(path: str) -> np.ndarray:
    """Load a ``*_bbox.npy`` label file of either dtype.

    Args:
        path (str): Label file.

    Returns:
        np.ndarray: ``[N]`` boxes of :data:`BBOX_DTYPE`, sorted by ``t``.

    Raises:
        SetupError: Fields are missing, or boxes are not sorted by time.
    """
    stored = np.load(path)
    found = stored.dtype.names or ()
    renamed = {LEGACY_FIELD_NAMES.get(name, name): name for name in found}
    missing = [name for name in BBOX_DTYPE.names if name not in renamed]
    if missing or stored.ndim != 1:
        raise SetupError(
            f'{path}: not a box label file: expected a 1-d array with the '
            f'fields {list(BBOX_DTYPE.names)} (or {list(LEGACY_FIELD_NAMES)} '
            f'for t / class_confidence), found shape {stored.shape} with '
            f'fields {list(found)}; missing {missing}.')
    boxes = np.empty(len(stored), BBOX_DTYPE)
    for name in BBOX_DTYPE.names:
        boxes[name] = stored[renamed[name]]
    decreasing = np.flatnonzero(np.diff(boxes['t']) < 0)
    if len(decreasing):
        index = int(decreasing[0])
        raise SetupError(
            f'{path}: boxes are not sorted by time: box {index + 1} has '
            f't = {boxes["t"][index + 1]} us after t = '
            f'{boxes["t"][index]} us; sort the file by t.')
    return boxes


def write_bbox_npy(path: str,
                   boxes: np.ndarray,
                   legacy: bool = False,
                   overwrite: bool = False) -> None:
    """Write boxes as a ``*_bbox.npy`` label file.

    Args:
        path (str): Output file; must end with ``.npy``.
        boxes (np.ndarray): ``[N]`` boxes of :data:`BBOX_DTYPE`, sorted by
            ``t``.
        legacy (bool): Write :data:`LEGACY_BBOX_DTYPE` (``ts``,
            ``confidence``) as old Gen1 files are.
        overwrite (bool): Replace an existing file.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: ``boxes`` lack fields, are unsorted, or do not fit the
            legacy dtype.
    """
    path = str(path)
    if not path.endswith('.npy'):
        raise ValueError(f'{path}: a label file name must end with .npy '
                         '(np.save would add it).')
    check_writable(path, overwrite)
    missing = set(BBOX_DTYPE.names) - set(boxes.dtype.names or ())
    if missing:
        raise ValueError(f'{path}: boxes lack the fields {sorted(missing)}; '
                         f'give an array of BBOX_DTYPE.')
    if np.any(np.diff(boxes['t']) < 0):
        raise ValueError(f'{path}: boxes are not sorted by t.')
    dtype = LEGACY_BBOX_DTYPE if legacy else BBOX_DTYPE
    stored = np.empty(len(boxes), dtype)
    inverse = {new: old for old, new in LEGACY_FIELD_NAMES.items()}
    for name in BBOX_DTYPE.names:
        field = inverse.get(name, name) if legacy else name
        values = boxes[name]
        if not np.array_equal(values.astype(dtype[field]), values):
            raise ValueError(
                f'{path}: {name} values do not fit {dtype[field]} of the '
                f'{"legacy" if legacy else "current"} label dtype.')
        stored[field] = values
    with written_in_place(path, '.npy') as partial_path:
        np.save(partial_path, stored)


def label_path_for(recording_path: str) -> str:
    """The label file of a recording: ``<name>_td.dat``, ``<name>_td.h5``
    or ``<name>_td.dat.h5`` (RVT's Gen1 h5) -> ``<name>_bbox.npy``.

    Raises:
        ValueError: The name has none of those endings.
    """
    recording_path = str(recording_path)
    for suffix in RECORDING_SUFFIXES:
        if recording_path.endswith(suffix):
            return recording_path[:-len(suffix)] + LABEL_SUFFIX
    raise ValueError(
        f'{recording_path}: a recording name must end with one of '
        f'{list(RECORDING_SUFFIXES)} to have a {LABEL_SUFFIX} label file.')


def require_label_path(recording_path: str) -> str:
    """:func:`label_path_for`, checked to exist.

    Raises:
        SetupError: The label file is missing (a recording without labels
            is an error, never skipped).
    """
    label_path = label_path_for(recording_path)
    if not osp.isfile(label_path):
        raise SetupError(
            f'{recording_path} has no label file: {label_path} is missing. '
            'Copy the labels of the download next to the recording, or '
            'move the recording out of the data folder.')
    return label_path
