from .hooks import (PaddingAwarePruningHook, RetentionScheduleHook,
                    TokenStatsHook)

__all__ = [
    'PaddingAwarePruningHook', 'RetentionScheduleHook', 'TokenStatsHook'
]
