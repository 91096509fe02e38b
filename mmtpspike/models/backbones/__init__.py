from .img_shapes import ImgShapesHandle, attach_img_shapes
from .qkformer import QKFormer
from .qkformer_checkpoint import convert_qkformer_keys, load_qkformer_checkpoint
from .sdtv1 import SDTV1
from .sdtv1_checkpoint import convert_sdtv1_keys, load_sdtv1_checkpoint
from .sdtv3 import SDTV3
from .sdtv3_checkpoint import convert_official_keys, load_sdtv3_checkpoint
from .spikformer import Spikformer

__all__ = [
    'ImgShapesHandle', 'attach_img_shapes',
    'QKFormer', 'convert_qkformer_keys', 'load_qkformer_checkpoint',
    'SDTV1', 'convert_sdtv1_keys', 'load_sdtv1_checkpoint',
    'SDTV3', 'Spikformer', 'convert_official_keys', 'load_sdtv3_checkpoint'
]
