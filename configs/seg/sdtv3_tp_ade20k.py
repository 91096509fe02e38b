# TP-Spikformer on SDT-V3-L for ADE20K: the dense recipe of sdtv3_ade20k.py
# with token early stopping in all transformer blocks at 56 % retention.
# Training-free use:
#   python tools/test.py configs/seg/sdtv3_tp_ade20k.py dense.pth
_base_ = './sdtv3_ade20k.py'

model = dict(
    backbone=dict(
        pruning=dict(
            keep_ratios=0.56,
            scorer=dict(
                type='IRToPScorer',
                spatial_weight=1.0,
                temporal_weight=1.0,
                window_size=3,
                variant='paper'),
            mode='per_block',
            restorer=dict(type='CarryOverRestorer'))))
