# Dense SDT-V3-M (10M) Mask R-CNN; see sdtv3_coco.py for the recipe.
_base_ = './sdtv3_coco.py'

embed_dims = [48, 96, 192, 240]
pretrained = 'checkpoints/sdtv3_m_imagenet.pth'
model = dict(
    backbone=dict(
        embed_dims=embed_dims,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=embed_dims))
