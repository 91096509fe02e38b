# The demo event detector of sdtv3_gen1_demo.py with TP-Spikformer token
# early stopping at 78 % retention. Training-free: evaluate a dense demo
# checkpoint
#   python tools/test.py configs/event_det/sdtv3_tp_gen1_demo.py dense.pth \
#       --cfg-options model.backbone.pruning.keep_ratios=0.56
_base_ = ['./sdtv3_gen1_demo.py', '../_base_/pruning/tp_78.py']

model = dict(backbone=dict(pruning=_base_.pruning))
