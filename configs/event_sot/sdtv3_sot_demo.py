# Small dense spiking one-stream tracker that trains and tests on the
# bundled simulated FE108-layout sequences (data/sot_demo, made by
# tools/dataset_converters/make_event_sot_demo.py: 160 x 120 events, 25 Hz
# annotated frames) on 2 CPU cores in about ten minutes: T = 2 histogram
# bins per frame interval, a 64 px template and a 128 px search crop
# (4 x 4 and 8 x 8 tokens at stride 16), 4 SDT-V3 blocks of 128 channels.
_base_ = './sdtv3_sot_fe108.py'

data_root = 'data/sot_demo/'
num_bins = 2
template_size = 64
search_size = 128
embed_dims = 128
representation = dict(type='EventHistogram', num_bins=num_bins, clip=10)

model = dict(
    encoder=dict(
        patch_dims=[16, 32, 64, embed_dims],
        depth=4,
        num_heads=4,
        num_timesteps=num_bins,
        drop_path=0.),
    head=dict(in_channels=embed_dims, feat_channels=64),
    template_size=template_size,
    search_size=search_size)

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
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        max_gap=20,
        samples_per_epoch=480,
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
