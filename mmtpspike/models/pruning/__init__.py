from .config import PruningConfig, PruningLayout, expand_keep_ratios
from .early_stopping import TokenPruner
from .restore import (CarryOverRestorer, NeighbourUpdateRestorer, Selection,
                      TokenRecord, TokenRestorer, ZeroRestorer)
from .scorers import (IRToPScorer, L2NormScorer, RandomScorer, SpatialScorer,
                      TemporalScorer, TokenScorer, normalize_scores)
from .selection import (index_to_mask, keep_counts, mass_counts,
                        protect_tokens, select_tokens, valid_token_mask)

__all__ = [
    'PruningConfig', 'PruningLayout', 'TokenPruner', 'expand_keep_ratios',
    'CarryOverRestorer', 'NeighbourUpdateRestorer', 'Selection',
    'TokenRecord', 'TokenRestorer', 'ZeroRestorer', 'IRToPScorer',
    'L2NormScorer', 'RandomScorer', 'SpatialScorer', 'TemporalScorer',
    'TokenScorer', 'normalize_scores', 'index_to_mask', 'keep_counts',
    'mass_counts', 'protect_tokens', 'select_tokens', 'valid_token_mask'
]
