from .hooks import (PaddingAwarePruningHook, RetentionScheduleHook,
                    TokenMapHook, TokenStatsHook)

__all__ = [
    'PaddingAwarePruningHook', 'RetentionScheduleHook', 'TokenMapHook',
    'TokenStatsHook'
]
