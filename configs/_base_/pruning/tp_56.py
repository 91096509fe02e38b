# The pruning block of tp_78.py at 56 % retention.
_base_ = './tp_78.py'

pruning = dict(keep_ratios=0.56)
