# Small dense Mask R-CNN + Spikformer (2 blocks, 64 channels, 4 heads, T=2)
# on the bundled mini COCO-format set (data/mini_coco_textured), with the
# data, schedule and heads of sdtv3_coco_demo.py. Spikformer gives one
# stride-16 map; SimplePyramidAdapter makes strides 4 / 8 / 16 / 32 of it for
# the stock FPN, whose strides the heads of the base config already declare.
_base_ = './sdtv3_coco_demo.py'

embed_dims = 64
neck_channels = 64
scale_factors = (4.0, 2.0, 1.0, 0.5)

model = dict(
    backbone=dict(
        _delete_=True,
        type='Spikformer',
        embed_dims=embed_dims,
        depth=2,
        num_heads=4,
        num_timesteps=2,
        init_cfg=None),
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
