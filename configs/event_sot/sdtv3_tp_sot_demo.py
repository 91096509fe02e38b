# The demo tracker with TP-Spikformer early stopping of the search tokens
# (IRToP, 78 % kept in every block; template tokens never stopped).
# Training-free from the dense demo weights:
#   python tools/test.py configs/event_sot/sdtv3_tp_sot_demo.py \
#       work_dirs/sdtv3_sot_demo/epoch_10.pth
_base_ = ['./sdtv3_sot_demo.py', '../_base_/pruning/tp_78.py']

model = dict(encoder=dict(pruning=_base_.pruning))
