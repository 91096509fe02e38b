from .simple_pyramid import SimplePyramidAdapter
from .spike_fpn import SpikeFPN

__all__ = ['SimplePyramidAdapter', 'SpikeFPN']
