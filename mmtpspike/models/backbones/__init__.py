from .sdtv3 import SDTV3
from .sdtv3_checkpoint import convert_official_keys, load_sdtv3_checkpoint

__all__ = ['SDTV3', 'convert_official_keys', 'load_sdtv3_checkpoint']
