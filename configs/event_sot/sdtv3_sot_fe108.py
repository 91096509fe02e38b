# Dense token-pruning-ready spiking one-stream tracker on FE108 events
# (SDTrack / OSTrack setting): the template crop (context 2, 128 px) and the
# search crop (context 4, 256 px) of the events between consecutive
# annotated frames, as stacked histograms of T time bins
# [B, T, 2, S, S], are embedded by SDT-V3's spiking patch embedding (stride
# 16) and run as one joint token sequence through SDT-V3 transformer blocks;
# a centre head (score / size / offset maps, Hann window at test time,
# focal + GIoU 2 + L1 5 losses) gives the box. OPEMetric prints success AUC,
# precision at 20 px and normalised precision. Data layout and commands:
# docs/event_tracking.md.
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)
default_scope = 'mmdet'

data_root = 'data/fe108/'
layout = 'fe108'
num_bins = 4
template_size = 128
search_size = 256
embed_dims = 256
representation = dict(type='EventHistogram', num_bins=num_bins, clip=10)

model = dict(
    type='SpikingOneStreamTracker',
    data_preprocessor=dict(type='SOTDataPreprocessor'),
    encoder=dict(
        type='JointTokenEncoder',
        in_channels=2,
        patch_dims=[32, 64, 128, embed_dims],
        conv_blocks=1,
        depth=8,
        block_type='sdtv3',
        num_heads=8,
        mlp_ratio=4,
        num_timesteps=num_bins,
        drop_path=0.1),
    head=dict(type='CenterHead', in_channels=embed_dims, feat_channels=128),
    template_size=template_size,
    search_size=search_size,
    template_context=2.,
    search_context=4.,
    test_cfg=dict(use_hann=True, window_influence=1.0))

train_pipeline = [
    dict(type='LoadSOTEventFrames', representation=representation),
    dict(
        type='SOTPairCrops',
        template_size=template_size,
        search_size=search_size,
        center_jitter=3.,
        scale_jitter=0.25),
    dict(type='PackSOTInputs')
]
test_pipeline = [
    dict(type='LoadSOTEventFrames', representation=representation),
    dict(type='PackSOTInputs')
]
dataset_type = 'EventSOTDataset'
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        layout=layout,
        split='train',
        max_gap=50,
        samples_per_epoch=60000,
        pipeline=train_pipeline))
# a tracker carries the target from frame to frame: one frame per batch,
# whole sequences in order on each rank
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='SequenceSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        layout=layout,
        split='test',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='OPEMetric')
test_evaluator = val_evaluator

max_epochs = 50
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[40],
        gamma=0.1)
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
