# Small dense Semantic FPN + Spikformer (2 blocks, 64 channels, 4 heads, T=2)
# on the bundled mini ADE20K-format set (data/mini_ade_textured), with the
# data, schedule and head of sdtv3_ade20k_demo.py. Spikformer gives one
# stride-16 map; SimplePyramidAdapter makes strides 4 / 8 / 16 / 32 of it for
# the stock FPN.
_base_ = './sdtv3_ade20k_demo.py'

embed_dims = 64
neck_channels = 48
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
            num_outs=len(scale_factors))
    ],
    decode_head=dict(
        in_channels=[neck_channels] * len(scale_factors),
        feature_strides=[int(16 / s) for s in scale_factors]))
