# SDT-V3-L Mask R-CNN with every speed option of token early stopping at 56 %
# retention (configs/_base_/pruning/tp_fastest_56.py): the fast config's
# transformer-stage stopping (mixer skipped) plus tile-granular stopping in
# the stem and conv stages 1-2 (8 x 8 tiles). Measured speed (backbone, 2 CPU
# threads, eager / onnxruntime / torch.compile) and accuracy cost:
# docs/benchmarks/fast_config.md. Conv-stage stopping needs fine-tuning:
#   python tools/train.py configs/det/sdtv3_tp_fastest_coco.py \
#       --cfg-options load_from=dense.pth
_base_ = ['./sdtv3_coco.py', '../_base_/pruning/tp_fastest_56.py']

model = dict(backbone=dict(pruning=_base_.pruning))
