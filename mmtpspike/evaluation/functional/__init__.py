"""Metric functions without the mmengine evaluator around them."""
from .ope import (box_ious, centre_errors, ope_scores, scored_frames,
                  summarise_curves)

__all__ = [
    'box_ious', 'centre_errors', 'ope_scores', 'scored_frames',
    'summarise_curves'
]
