# TP-Spikformer on SDT-V3-M (10M), 78 % retention; see sdtv3_tp_coco.py.
_base_ = ['./sdtv3_m_coco.py', '../_base_/pruning/tp_78.py']

model = dict(backbone=dict(pruning=_base_.pruning))
