from .event_frames import event_frame_image
from .samples import is_event_sample, sample_name, sample_picture
from .token_maps import draw_token_grid

__all__ = [
    'draw_token_grid', 'event_frame_image', 'is_event_sample', 'sample_name',
    'sample_picture'
]
