# Small dense Mask R-CNN + QKFormer (widths 24 / 48 / 96, 1 + 2 + 2 blocks,
# 4 heads, T=2) on the bundled mini COCO-format set
# (data/mini_coco_textured), with the data, schedule and heads of
# sdtv3_coco_demo.py. QKFormer gives strides 4 / 8 / 16; with_stride32 adds a
# newly initialised stride-32 stage, so the stock FPN gets the strides
# 4 / 8 / 16 / 32 that the heads of the base config declare.
_base_ = './sdtv3_coco_demo.py'

embed_dims = [24, 48, 96]
neck_channels = 64

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
        num_outs=5))
