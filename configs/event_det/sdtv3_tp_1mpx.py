# sdtv3_1mpx.py with TP-Spikformer token early stopping at 78 % retention.
_base_ = ['./sdtv3_1mpx.py', '../_base_/pruning/tp_78.py']

model = dict(backbone=dict(pruning=_base_.pruning))
