"""Event frames computed once and stored per recording, for trainings of
many epochs (``tools/dataset_converters/precompute_event_frames.py``).

One compressed ``<recording>.npz`` per recording holds one ``[T, 2, H, W]``
uint8 member per labelled timestamp (``t<timestamp_us>``) and a ``settings``
member: the JSON of the window and the representation that made them, so a
pipeline with other settings is refused instead of reading stale frames.
Members of an ``.npz`` decompress one at a time: a sample reads only its own
frames.
"""
import json
import os.path as osp
from typing import Dict

import numpy as np

from mmtpspike.utils.config import SetupError
from .file_output import written_in_place

FRAMES_SUFFIX = '.npz'
SETTINGS_KEY = 'settings'


def frames_key(timestamp_us: int) -> str:
    """Member name of the frames of one labelled timestamp."""
    return f't{int(timestamp_us)}'


def frames_path(folder: str, recording: str) -> str:
    """``<folder>/<recording>.npz``."""
    return osp.join(folder, recording + FRAMES_SUFFIX)


def write_frames(path: str, frames: Dict[int, np.ndarray], settings: dict,
                 overwrite: bool = False) -> None:
    """Store one recording's frames.

    Args:
        path (str): ``.npz`` file to write.
        frames (dict[int, np.ndarray]): ``[T, 2, H, W]`` uint8 frames keyed
            by label time in microseconds.
        settings (dict): Window and representation (JSON-serialisable).
        overwrite (bool): Replace an existing file. Default: False.

    Raises:
        SetupError: ``path`` exists and ``overwrite`` is False.
    """
    if osp.exists(path) and not overwrite:
        raise SetupError(f'{path} exists: pass --overwrite to replace it')
    members = {frames_key(t): f for t, f in frames.items()}
    members[SETTINGS_KEY] = np.array(json.dumps(settings, sort_keys=True))
    with written_in_place(path, '.npz') as partial_path:
        np.savez_compressed(partial_path, **members)


def read_settings(archive, path: str) -> dict:
    """The settings stored in an opened ``.npz`` ``archive``."""
    if SETTINGS_KEY not in archive.files:
        raise SetupError(f'{path} has no {SETTINGS_KEY!r} member: it was not '
                         'written by precompute_event_frames.py')
    return json.loads(str(archive[SETTINGS_KEY]))


def read_frames(archive, path: str, timestamp_us: int) -> np.ndarray:
    """The ``[T, 2, H, W]`` frames of one label time from an opened
    ``.npz`` ``archive``."""
    key = frames_key(timestamp_us)
    if key not in archive.files:
        raise SetupError(
            f'{path} has no frames for t = {timestamp_us} us: the labels '
            'changed since the frames were computed; run '
            'tools/dataset_converters/precompute_event_frames.py again '
            'with --overwrite')
    return archive[key]
