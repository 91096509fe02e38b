from .token_maps import draw_token_grid, records_to_cpu

__all__ = ['draw_token_grid', 'records_to_cpu']
