from .backbones import SDTV3, attach_img_shapes
from .necks import SimplePyramidAdapter, SpikeFPN

__all__ = ['SDTV3', 'SimplePyramidAdapter', 'SpikeFPN', 'attach_img_shapes']
