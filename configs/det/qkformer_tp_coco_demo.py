# The demo detector of qkformer_coco_demo.py with TP-Spikformer token early
# stopping in all 5 QKFormer blocks at 78 % retention. Training-free:
# evaluate a dense demo checkpoint with
#   python tools/test.py configs/det/qkformer_tp_coco_demo.py dense.pth \
#       --cfg-options model.backbone.pruning.keep_ratios=0.56
_base_ = ['./qkformer_coco_demo.py', '../_base_/pruning/tp_78.py']

model = dict(backbone=dict(pruning=_base_.pruning))
