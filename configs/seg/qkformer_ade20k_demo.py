# Small dense Semantic FPN + QKFormer (widths 24 / 48 / 96, 1 + 2 + 2 blocks,
# 4 heads, T=2) on the bundled mini ADE20K-format set
# (data/mini_ade_textured), with the data, schedule and head of
# sdtv3_ade20k_demo.py. with_stride32 adds a newly initialised stride-32
# stage, so the stock FPN and FPNHead get strides 4 / 8 / 16 / 32.
_base_ = './sdtv3_ade20k_demo.py'

embed_dims = [24, 48, 96]
neck_channels = 48

model = dict(
    backbone=dict(
        _delete_=True,
        type='QKFormer',
        embed_dims=embed_dims,
        depths=(1, 2, 2),
        num_heads=4,
        num_timesteps=2,
        with_stride32=True,
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=embed_dims + embed_dims[-1:],
        out_channels=neck_channels,
        num_outs=4),
    decode_head=dict(in_channels=[neck_channels] * 4))
