import importlib.util

from . import events
from .samplers import SequenceSampler
from .transforms import CheckedLoadImageFromFile, UnreadableImageError

__all__ = [
    'CheckedLoadImageFromFile', 'SequenceSampler', 'UnreadableImageError',
    'events'
]

if importlib.util.find_spec('mmseg') is not None:
    from .mini_ade20k import MiniADE20KDataset  # noqa: F401
    __all__.append('MiniADE20KDataset')
