# TP-Spikformer on the Spikformer-8-384 (T=4) backbone: Semantic FPN on
# ADE20K with the recipe of sdtv3_ade20k.py (512 x 512 crops, 160k
# iterations, AdamW lr 1e-3), token early stopping in all 8 encoder blocks at
# 56 % retention. Spikformer gives one stride-16 map; SimplePyramidAdapter
# makes strides 4 / 8 / 16 / 32 of it for the stock FPN. Initialised from
# the public Spikformer-8-384 ImageNet checkpoint, supplied by the user at
# `pretrained` (relative to the working directory; a missing file is an
# error). Training-free use:
#   python tools/test.py configs/seg/spikformer_tp_ade20k.py dense.pth
_base_ = ['./sdtv3_ade20k.py', '../_base_/pruning/tp_56.py']

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
            num_outs=len(scale_factors))
    ],
    decode_head=dict(
        in_channels=[neck_channels] * len(scale_factors),
        feature_strides=[int(16 / s) for s in scale_factors]))
