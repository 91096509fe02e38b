from .token_maps import draw_token_grid

__all__ = ['draw_token_grid']
