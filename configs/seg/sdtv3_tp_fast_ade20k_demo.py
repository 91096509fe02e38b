# The demo segmentor of sdtv3_ade20k_demo.py with the speed options of token
# early stopping that pay off, at 56 % retention (see sdtv3_tp_fast_ade20k.py).
# Training-free: evaluate a dense demo checkpoint with
#   python tools/test.py configs/seg/sdtv3_tp_fast_ade20k_demo.py dense.pth
_base_ = ['./sdtv3_ade20k_demo.py', '../_base_/pruning/tp_fast_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
