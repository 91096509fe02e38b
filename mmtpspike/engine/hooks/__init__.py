from .padding_aware_pruning_hook import PaddingAwarePruningHook
from .retention_schedule_hook import RetentionScheduleHook
from .spiking_checkpoint_hook import (SpikingCheckpointHook,
                                      add_spiking_checkpoint_hook,
                                      sets_keep_ratios)
from .token_map_hook import TokenMapHook
from .token_stats_hook import TokenStatsHook

__all__ = [
    'PaddingAwarePruningHook', 'RetentionScheduleHook',
    'SpikingCheckpointHook', 'TokenMapHook', 'TokenStatsHook',
    'add_spiking_checkpoint_hook', 'sets_keep_ratios'
]
