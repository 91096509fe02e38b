# TP-Spikformer token early stopping in every transformer block of SDT-V3 at
# 78 % retention with IRToP scores (the paper's settings, spelled out). A
# config lists this file in its _base_ and sets
#   model = dict(backbone=dict(pruning=_base_.pruning))
pruning = dict(
    keep_ratios=0.78,
    scorer=dict(
        type='IRToPScorer',
        spatial_weight=1.0,
        temporal_weight=1.0,
        window_size=3,
        variant='paper'),
    mode='per_block',
    restorer=dict(type='CarryOverRestorer'))
