from mmtpspike.registry import INSTALLED_TASK_PACKAGES
from .backbones import SDTV3, attach_img_shapes
from .necks import SimplePyramidAdapter, SpikeFPN

__all__ = ['SDTV3', 'SimplePyramidAdapter', 'SpikeFPN', 'attach_img_shapes']

if 'mmdet' in INSTALLED_TASK_PACKAGES:
    from .data_preprocessors import (  # noqa: F401
        EventDetDataPreprocessor, SOTDataPreprocessor)
    __all__ += ['EventDetDataPreprocessor', 'SOTDataPreprocessor']
    from .heads import CenterHead  # noqa: F401
    from .trackers import (  # noqa: F401
        CandidateEliminationScorer, JointTokenEncoder,
        SpikingOneStreamTracker)
    __all__ += ['CandidateEliminationScorer', 'CenterHead',
                'JointTokenEncoder', 'SpikingOneStreamTracker']
