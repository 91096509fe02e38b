# sdtv3_gen1.py with TP-Spikformer token early stopping at 78 % retention:
# the temporal term of IRToP sees the T = 10 histogram bins. Training-free:
#   python tools/test.py configs/event_det/sdtv3_tp_gen1.py dense.pth
_base_ = ['./sdtv3_gen1.py', '../_base_/pruning/tp_78.py']

model = dict(backbone=dict(pruning=_base_.pruning))
