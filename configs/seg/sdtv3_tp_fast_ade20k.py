# SDT-V3-L Semantic FPN with the speed options of token early stopping that pay
# off on CPU, at 56 % retention (configs/_base_/pruning/tp_fast_56.py): besides
# attention and MLP of the transformer blocks, stopped tokens skip the SepConv
# mixers' pointwise convs. Measured speed and accuracy cost, and why
# conv-stage early stopping is not part of it: docs/benchmarks/fast_config.md.
# Training-free use on a dense checkpoint:
#   python tools/test.py configs/seg/sdtv3_tp_fast_ade20k.py dense.pth
_base_ = ['./sdtv3_ade20k.py', '../_base_/pruning/tp_fast_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
