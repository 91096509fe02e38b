# The demo segmentor of qkformer_ade20k_demo.py with token early stopping in
# all 5 QKFormer blocks at 56 % retention. Training-free: evaluate a dense
# demo checkpoint with
#   python tools/test.py configs/seg/qkformer_tp_ade20k_demo.py dense.pth \
#       --cfg-options model.backbone.pruning.keep_ratios=0.78
_base_ = ['./qkformer_ade20k_demo.py', '../_base_/pruning/tp_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
