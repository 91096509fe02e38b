# Small dense Semantic FPN + SDT-V3-T that trains and evaluates on the bundled
# mini ADE20K-format set with photo-textured regions (data/mini_ade_textured,
# made by tools/dataset_converters/make_mini_ade20k.py; the first, tinted set
# is data/mini_ade) on 2 CPU cores in minutes.
_base_ = './sdtv3_ade20k.py'

data_root = 'data/mini_ade_textured'
dataset_type = 'MiniADE20KDataset'
embed_dims = [24, 48, 96, 128]
crop_size = (128, 128)
num_classes = 5

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(embed_dims=embed_dims, drop_path_rate=0., init_cfg=None),
    neck=dict(in_channels=embed_dims, out_channels=48),
    decode_head=dict(
        in_channels=[48] * 4, channels=32, num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(320, 160),
        ratio_range=(0.75, 1.25),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 160), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=20,
        end=max_iters,
        by_epoch=False)
]
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
custom_hooks = [
    dict(type='PaddingAwarePruningHook'),
    dict(type='TokenStatsHook', interval=10),
]
