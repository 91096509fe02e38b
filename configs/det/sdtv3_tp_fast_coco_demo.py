# The demo detector of sdtv3_coco_demo.py with the speed options of token
# early stopping that pay off, at 56 % retention (see sdtv3_tp_fast_coco.py).
# Training-free: evaluate a dense demo checkpoint with
#   python tools/test.py configs/det/sdtv3_tp_fast_coco_demo.py dense.pth
_base_ = ['./sdtv3_coco_demo.py', '../_base_/pruning/tp_fast_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
