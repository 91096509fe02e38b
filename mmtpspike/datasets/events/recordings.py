"""Opening an event recording by its file name: the interface every reader
shares and the function that picks the reader."""
import os.path as osp
from typing import Optional, Protocol, Tuple, Union

from .aedat4 import Aedat4Recording
from .events import Events
from .prophesee_dat import DatRecording
from .rvt_h5 import H5Recording

#: file suffix -> reader
READERS = {
    '.dat': DatRecording,
    '.h5': H5Recording,
    '.hdf5': H5Recording,
    '.aedat4': Aedat4Recording
}


class Recording(Protocol):
    """What the event datasets read from a recording.

    Attributes:
        path (str): The file.
        width (int, optional): Sensor width, None when the file lacks it.
        height (int, optional): Sensor height, None when the file lacks it.
        num_events (int): Events in the file.
    """
    path: str
    width: Optional[int]
    height: Optional[int]
    num_events: int

    def time_range(self) -> Optional[Tuple[int, int]]:
        """``(first, last)`` timestamp in microseconds, None when empty."""

    def read(self, t_start_us: int, t_end_us: int) -> Events:
        """The events with ``t_start_us <= t < t_end_us``, read without
        loading the whole recording."""

    def read_all(self) -> Events:
        """All events."""

    def validate(self, chunk_events: int = ...) -> None:
        """Check the whole file; raise naming the file and the problem."""


def open_recording(
        path: str,
        **kwargs) -> Union[DatRecording, H5Recording, Aedat4Recording]:
    """The reader of ``path`` by its suffix: ``.dat`` (Prophesee) or
    ``.h5`` / ``.hdf5`` (RVT's or :func:`write_h5`'s layout) or
    ``.aedat4`` (iniVation DV, decoded whole on open).

    Args:
        path (str): Recording file.
        **kwargs: Options of the reader (e.g. ``repair_time`` of
            :class:`H5Recording`).

    Raises:
        ValueError: Another suffix.
    """
    suffix = osp.splitext(str(path))[1].lower()
    if suffix not in READERS:
        raise ValueError(
            f'{path}: no event reader for "{suffix}" files; supported '
            f'suffixes: {sorted(READERS)}.')
    return READERS[suffix](path, **kwargs)
