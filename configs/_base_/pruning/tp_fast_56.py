# The speed options of TP-Spikformer early stopping on SDT-V3 that pay off in
# wall-clock time on CPU, at 56 % retention (IRToP scores on each block's
# input): in the 8 transformer blocks stopped tokens skip attention, MLP and
# the SepConv mixer's pointwise convs (skip_mixer).
# Early stopping in the conv stages (conv_keep_ratios) cuts 40 % of the
# backbone's MACs more and pays on CPU when whole tiles stop (conv_tile), but
# it costs most of the accuracy training-free, so it stays off here and is
# in tp_fastest_56.py; see docs/benchmarks/fast_config.md. A config lists
# this file in its _base_ and sets
#   model = dict(backbone=dict(pruning=_base_.pruning))
_base_ = ['./tp_56.py']

pruning = dict(skip_mixer=True)
