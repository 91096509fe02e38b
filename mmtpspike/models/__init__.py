from .backbones import SDTV3
from .necks import SpikeFPN

__all__ = ['SDTV3', 'SpikeFPN']
