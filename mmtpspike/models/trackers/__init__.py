from .candidate_elimination import CandidateEliminationScorer
from .joint_block import JointBlock
from .joint_encoder import JointTokenEncoder
from .joint_layout import JointContext, JointLayout
from .one_stream_tracker import SpikingOneStreamTracker

__all__ = [
    'CandidateEliminationScorer', 'JointBlock', 'JointContext',
    'JointLayout', 'JointTokenEncoder', 'SpikingOneStreamTracker'
]
