# The FE108 tracker with TP-Spikformer early stopping of the search tokens
# (IRToP, 78 % of them kept in every block; template tokens are never
# stopped and do not count in the ratio). Training-free from the dense
# weights:
#   python tools/test.py configs/event_sot/sdtv3_tp_sot_fe108.py dense.pth
_base_ = ['./sdtv3_sot_fe108.py', '../_base_/pruning/tp_78.py']

model = dict(encoder=dict(pruning=_base_.pruning))
