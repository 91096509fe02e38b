# Every speed option of token early stopping on SDT-V3 at 56 % retention, the
# setting that buys the most wall-clock time on CPU: tp_fast_56.py (the 8
# transformer blocks stop tokens, stopped tokens skip attention, MLP and the
# SepConv mixer's pointwise convs) plus tile-granular stopping in the stem
# and conv stages 1-2: whole 8 x 8 tiles of tokens stop, kept tiles run the
# 3x3 channel MLP as dense convs on a batch of haloed tiles (conv_tile).
# Conv-stage stopping is not training-free (docs/benchmarks/fast_config.md):
# fine-tune with it on. A config lists this file in its _base_ and sets
#   model = dict(backbone=dict(pruning=_base_.pruning))
_base_ = ['./tp_fast_56.py']

pruning = dict(conv_keep_ratios=0.56, conv_tile=8)
