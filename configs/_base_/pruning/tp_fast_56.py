# Every speed option of TP-Spikformer early stopping on SDT-V3 at 56 %
# retention (IRToP scores on each block's input):
# - the 8 transformer blocks skip attention, MLP and, for stopped tokens,
#   the SepConv mixer's pointwise convs (skip_mixer);
# - the stem and conv stages 1-2 stop tokens too (conv_keep_ratios): their
#   3x3 channel MLPs run at the kept positions only.
# A config lists this file in its _base_ and sets
#   model = dict(backbone=dict(pruning=_base_.pruning))
_base_ = ['./tp_56.py']

pruning = dict(skip_mixer=True, conv_keep_ratios=[1.0, 0.56, 0.56])
