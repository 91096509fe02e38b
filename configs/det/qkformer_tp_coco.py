# TP-Spikformer on the QKFormer 10-384 (T=4) backbone: Mask R-CNN + stock FPN
# on COCO with the recipe of sdtv3_coco.py (AdamW lr 2e-4, 1x, multi-scale
# 480-800 training, 1333 x 800 test), token early stopping in all 10 blocks
# at 78 % retention (IRToP). QKFormer gives strides 4 / 8 / 16; with_stride32
# adds a newly initialised stride-32 stage for the FPN. Initialised from the
# public QKFormer 10-384 ImageNet checkpoint, supplied by the user at
# `pretrained` (relative to the working directory; a missing file is an
# error). Training-free use: evaluate a dense checkpoint with
#   python tools/test.py configs/det/qkformer_tp_coco.py dense.pth \
#       --cfg-options model.backbone.pruning.keep_ratios=0.56
_base_ = ['./sdtv3_coco.py', '../_base_/pruning/tp_78.py']

pretrained = 'checkpoints/qkformer_10_384_imagenet.pth'
embed_dims = [96, 192, 384]

model = dict(
    backbone=dict(
        _delete_=True,
        type='QKFormer',
        arch='10-384',
        num_timesteps=4,
        with_stride32=True,
        drop_path_rate=0.1,
        pruning=_base_.pruning,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=embed_dims + embed_dims[-1:],
        out_channels=256,
        num_outs=5))
