# TP-Spikformer on SDT-V3-L: the dense recipe of sdtv3_coco.py with token
# early stopping in all 8 transformer blocks at 78 % retention (IRToP).
# Training-free use: evaluate a dense checkpoint with this config, e.g.
#   python tools/test.py configs/det/sdtv3_tp_coco.py dense.pth \
#       --cfg-options model.backbone.pruning.keep_ratios=0.56
_base_ = './sdtv3_coco.py'

model = dict(
    backbone=dict(
        pruning=dict(
            keep_ratios=0.78,
            scorer=dict(
                type='IRToPScorer',
                spatial_weight=1.0,
                temporal_weight=1.0,
                window_size=3,
                variant='paper'),
            mode='per_block',
            restorer=dict(type='CarryOverRestorer'))))
