# TP-Spikformer on SDT-V3-M (10M), 56 % retention; see sdtv3_tp_ade20k.py.
_base_ = ['./sdtv3_m_ade20k.py', '../_base_/pruning/tp_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
