from .event_frames import event_frame_image
from .token_maps import draw_token_grid

__all__ = ['draw_token_grid', 'event_frame_image']
