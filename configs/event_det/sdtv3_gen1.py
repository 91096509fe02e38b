# Dense SDT-V3-L + spiking FPN + YOLOX head on Prophesee Gen1 events, RVT's
# protocol: each labelled timestamp is one sample, the 50 ms of events before
# it become a stacked histogram of 10 time bins (counts per polarity clipped
# at 10), which the spiking backbone reads as T = 10 timesteps
# [B, T, 2, 240, 304]; PropheseeMetric scores with RVT's filters.
# Data layout and commands: docs/event_detection.md.
_base_ = [
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py', '../_base_/models/sdtv3_l.py'
]

camera = 'gen1'
data_root = 'data/gen1/'
classes = ('car', 'pedestrian')
# the representation: window before each label time, its time bins (= the
# backbone's timesteps), count clipping, spatial downsampling factor
window_us = 50000
num_bins = 10
clip_counts = 10
downsample = 1
neck_channels = 256

model = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(
        type='EventDetDataPreprocessor', event_channels=2,
        pad_size_divisor=32),
    # trained from scratch on events, as RVT: the ImageNet stem reads 3
    # colour channels, not 2 polarities
    backbone=dict(
        in_channels=2, num_timesteps=num_bins, init_cfg=None,
        **{k: v for k, v in _base_.sdtv3_l.items() if k != 'init_cfg'}),
    neck=dict(
        _base_.spike_fpn,
        out_channels=neck_channels,
        start_level=1,
        num_outs=3),
    bbox_head=dict(
        type='YOLOXHead',
        num_classes=len(classes),
        in_channels=neck_channels,
        feat_channels=neck_channels,
        stacked_convs=2,
        strides=_base_.strides[1:],
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='Swish'),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, reduction='sum',
            loss_weight=1.0),
        loss_bbox=dict(
            type='IoULoss', mode='square', eps=1e-16, reduction='sum',
            loss_weight=5.0),
        loss_obj=dict(
            type='CrossEntropyLoss', use_sigmoid=True, reduction='sum',
            loss_weight=1.0),
        loss_l1=dict(type='L1Loss', reduction='sum', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
    test_cfg=dict(
        score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65),
        max_per_img=100))

representation = dict(
    type='EventHistogram', num_bins=num_bins, clip=clip_counts,
    downsample=downsample)
train_pipeline = [
    dict(type='LoadEventWindow', window_us=window_us),
    dict(type='LoadAnnotations', with_bbox=True),
    representation,
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
# PropheseeMetric reads the raw labels (instances), the recording and the
# label time of each sample, the drawing hooks event_repr_shape; the boxes,
# loaded after the representation, stay in sensor pixels (for the analysis
# tools' object masks)
test_pipeline = [
    dict(type='LoadEventWindow', window_us=window_us),
    representation,
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'recording', 'timestamp_us', 'instances',
                   'event_repr_shape'))
]
dataset_type = 'Gen1Dataset'
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(events='train/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(events='val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    val_dataloader, dataset=dict(val_dataloader['dataset'],
                                 data_prefix=dict(events='test/')))
val_evaluator = dict(
    type='PropheseeMetric', camera=camera, downsample_factor=downsample)
test_evaluator = val_evaluator

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.))
auto_scale_lr = dict(base_batch_size=8)

# tools/test.py --show-dir draws detections over the event frames
default_hooks = dict(visualization=dict(type='EventDetVisualizationHook'))

randomness = dict(seed=0)
