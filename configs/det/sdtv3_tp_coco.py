# TP-Spikformer on SDT-V3-L: the dense recipe of sdtv3_coco.py with token
# early stopping in all 8 transformer blocks at 78 % retention (IRToP).
# Training-free use: evaluate a dense checkpoint with this config, e.g.
#   python tools/test.py configs/det/sdtv3_tp_coco.py dense.pth \
#       --cfg-options model.backbone.pruning.keep_ratios=0.56
_base_ = ['./sdtv3_coco.py', '../_base_/pruning/tp_78.py']

model = dict(backbone=dict(pruning=_base_.pruning))
