"""Event-camera data: readers and writers of the Prophesee and RVT file
formats, event representations as registered transforms, the Gen1 / 1Mpx
datasets and a small event simulator."""
from .events import EVENT_DTYPES, Events

__all__ = ['EVENT_DTYPES', 'Events']
