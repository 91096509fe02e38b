# Small dense SDT-V3-T + spiking FPN + YOLOX head that trains and evaluates
# on the bundled simulated Gen1-layout recordings (data/gen1_demo, made by
# tools/dataset_converters/make_event_demo.py) on 2 CPU cores in about ten
# minutes. The representation is downsampled by 2 (120 x 152, padded to
# 128 x 160) with T = 4 time bins over 50 ms, summing each 2 x 2 block (RVT's
# nearest-neighbour downsampling would drop 3 of 4 events of these sparse
# recordings); the metric scores at that size with RVT's Gen1 filters halved.
_base_ = './sdtv3_gen1.py'

data_root = 'data/gen1_demo/'
num_bins = 4
downsample = 2
embed_dims = [24, 48, 96, 128]
neck_channels = 64
representation = dict(
    _base_.representation,
    num_bins=num_bins,
    downsample=downsample,
    downsample_mode='sum')

model = dict(
    backbone=dict(
        embed_dims=embed_dims, num_timesteps=num_bins, drop_path_rate=0.),
    neck=dict(in_channels=embed_dims, out_channels=neck_channels),
    bbox_head=dict(
        in_channels=neck_channels, feat_channels=neck_channels,
        stacked_convs=1),
    test_cfg=dict(max_per_img=20))

# the base pipelines with this representation (train step 3, test step 2)
train_pipeline = [
    *_base_.train_pipeline[:2], representation, *_base_.train_pipeline[3:]
]
test_pipeline = [
    _base_.test_pipeline[0], representation, *_base_.test_pipeline[2:]
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
val_evaluator = dict(downsample_factor=downsample)
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[9, 11],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
custom_hooks = [
    dict(type='PaddingAwarePruningHook'),
    dict(type='TokenStatsHook', interval=10),
]
