# TP-Spikformer on the Spikformer-8-384 (T=4) backbone: Mask R-CNN on COCO
# with the recipe of sdtv3_coco.py (AdamW lr 2e-4, 1x, multi-scale 480-800
# training, 1333 x 800 test), token early stopping in all 8 encoder blocks at
# 78 % retention (IRToP). Spikformer gives one stride-16 map;
# SimplePyramidAdapter makes strides 4 / 8 / 16 / 32 of it for the stock FPN.
# Initialised from the public Spikformer-8-384 ImageNet checkpoint, supplied
# by the user at `pretrained` (relative to the working directory; a missing
# file is an error). Training-free use: evaluate a dense checkpoint with
#   python tools/test.py configs/det/spikformer_tp_coco.py dense.pth \
#       --cfg-options model.backbone.pruning.keep_ratios=0.56
_base_ = ['./sdtv3_coco.py', '../_base_/pruning/tp_78.py']

pretrained = 'checkpoints/spikformer_8_384_imagenet.pth.tar'
embed_dims = 384
neck_channels = 256
scale_factors = (4.0, 2.0, 1.0, 0.5)

model = dict(
    backbone=dict(
        _delete_=True,
        type='Spikformer',
        arch='8-384',
        num_timesteps=4,
        pruning=_base_.pruning,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=[
        dict(
            type='SimplePyramidAdapter',
            in_channels=embed_dims,
            out_channels=neck_channels,
            scale_factors=scale_factors),
        dict(
            type='FPN',
            in_channels=[neck_channels] * len(scale_factors),
            out_channels=neck_channels,
            num_outs=5)
    ])
