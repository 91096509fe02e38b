from .hooks import (PaddingAwarePruningHook, RetentionScheduleHook,
                    SpikingCheckpointHook, TokenMapHook, TokenStatsHook)

__all__ = [
    'PaddingAwarePruningHook', 'RetentionScheduleHook',
    'SpikingCheckpointHook', 'TokenMapHook', 'TokenStatsHook'
]
