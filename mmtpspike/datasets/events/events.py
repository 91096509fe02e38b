"""Events as columns: the one in-memory form every reader, writer,
representation and the simulator share."""
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

#: dtype of each column
EVENT_DTYPES = dict(t=np.int64, x=np.uint16, y=np.uint16, p=np.uint8)


@dataclass(frozen=True)
class Events:
    """A stream of camera events, one array per field, sorted by time.

    Args:
        t (np.ndarray): Timestamps in microseconds, ``[N]`` int64,
            non-decreasing.
        x (np.ndarray): Columns, ``[N]`` uint16.
        y (np.ndarray): Rows, ``[N]`` uint16.
        p (np.ndarray): Polarities, ``[N]`` uint8: 1 = ON (brighter),
            0 = OFF.

    Example:
        >>> import numpy as np
        >>> events = Events.from_arrays(t=[5, 9], x=[1, 2], y=[0, 3], p=[1, 0])
        >>> len(events), events.t.dtype, events[1:].x.tolist()
        (2, dtype('int64'), [2])
    """
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray

    def __post_init__(self) -> None:
        lengths = {name: len(getattr(self, name)) for name in EVENT_DTYPES}
        if len(set(lengths.values())) > 1:
            raise ValueError(f'Events columns differ in length: {lengths}')

    @classmethod
    def from_arrays(cls, t, x, y, p) -> 'Events':
        """Events from array-likes, cast to :data:`EVENT_DTYPES`."""
        columns = dict(t=t, x=x, y=y, p=p)
        return cls(**{
            name: np.asarray(columns[name], dtype=dtype)
            for name, dtype in EVENT_DTYPES.items()
        })

    @classmethod
    def empty(cls) -> 'Events':
        """No events."""
        return cls(**{
            name: np.zeros(0, dtype)
            for name, dtype in EVENT_DTYPES.items()
        })

    @classmethod
    def concatenate(cls, parts: Sequence['Events']) -> 'Events':
        """The events of ``parts`` one after the other."""
        if not parts:
            return cls.empty()
        return cls(**{
            name: np.concatenate([getattr(part, name) for part in parts])
            for name in EVENT_DTYPES
        })

    def __len__(self) -> int:
        return len(self.t)

    def __getitem__(self, index: Union[slice, np.ndarray]) -> 'Events':
        """The events selected by a slice, boolean mask or index array."""
        return Events(**{
            name: getattr(self, name)[index]
            for name in EVENT_DTYPES
        })
