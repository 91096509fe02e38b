from mmtpspike.registry import INSTALLED_TASK_PACKAGES
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

if 'mmdet' in INSTALLED_TASK_PACKAGES:
    from .event_det_visualization_hook import \
        EventDetVisualizationHook  # noqa: F401
    __all__.append('EventDetVisualizationHook')
