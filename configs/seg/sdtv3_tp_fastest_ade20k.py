# SDT-V3-L Semantic FPN with every speed option of token early stopping at
# 56 % retention (configs/_base_/pruning/tp_fastest_56.py): the fast config's
# transformer-stage stopping (mixer skipped) plus tile-granular stopping in
# the stem and conv stages 1-2 (8 x 8 tiles). Measured speed and accuracy
# cost: docs/benchmarks/fast_config.md. Conv-stage stopping needs
# fine-tuning:
#   python tools/train.py configs/seg/sdtv3_tp_fastest_ade20k.py \
#       --cfg-options load_from=dense.pth
_base_ = ['./sdtv3_ade20k.py', '../_base_/pruning/tp_fastest_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
