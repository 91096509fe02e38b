from .backbones import SDTV3
from .necks import SimplePyramidAdapter, SpikeFPN

__all__ = ['SDTV3', 'SimplePyramidAdapter', 'SpikeFPN']
