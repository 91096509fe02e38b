from .event_frames import event_frame_image
from .samples import is_event_sample, sample_name, sample_picture
from .token_maps import draw_token_grid
from .track_strip import draw_track_strip

__all__ = [
    'draw_token_grid', 'draw_track_strip', 'event_frame_image',
    'is_event_sample', 'sample_name', 'sample_picture'
]
