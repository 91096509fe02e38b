from .padding_aware_pruning_hook import PaddingAwarePruningHook
from .retention_schedule_hook import RetentionScheduleHook
from .token_map_hook import TokenMapHook
from .token_stats_hook import TokenStatsHook

__all__ = [
    'PaddingAwarePruningHook', 'RetentionScheduleHook', 'TokenMapHook',
    'TokenStatsHook'
]
