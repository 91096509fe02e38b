from .sdtv3 import SDTV3
from .sdtv3_checkpoint import convert_official_keys, load_sdtv3_checkpoint
from .spikformer import Spikformer

__all__ = [
    'SDTV3', 'Spikformer', 'convert_official_keys', 'load_sdtv3_checkpoint'
]
