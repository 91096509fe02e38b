# TP-Spikformer on SDT-V3-L for ADE20K: the dense recipe of sdtv3_ade20k.py
# with token early stopping in all transformer blocks at 56 % retention.
# Training-free use:
#   python tools/test.py configs/seg/sdtv3_tp_ade20k.py dense.pth
_base_ = ['./sdtv3_ade20k.py', '../_base_/pruning/tp_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
