# Semantic FPN (spiking FPN neck + stock FPNHead) with the dense SDT-V3-L
# backbone on ADE20K, public SDT-V3 recipe: 512 x 512 crops, 160k iterations,
# AdamW lr 1e-3 wd 0.005, decode head lr x2, linear warm-up + poly decay.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)

# Official SDT-V3 ImageNet checkpoint, supplied by the user; when the file is
# absent the backbone trains from scratch with a warning.
pretrained = 'checkpoints/sdtv3_l_imagenet.pth'
embed_dims = [64, 128, 256, 360]
crop_size = (512, 512)
# stage4_stride=2: the four maps have strides 4, 8, 16, 32, as FPNHead's
# feature_strides declare.
strides = [4, 8, 16, 32]

data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='SDTV3',
        embed_dims=embed_dims,
        stage4_stride=2,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    # stock FPN instead: neck=dict(_delete_=True, type='FPN', ...same args)
    neck=dict(
        _delete_=True,
        type='SpikeFPN',
        in_channels=embed_dims,
        out_channels=256,
        num_outs=4),
    decode_head=dict(
        feature_strides=strides, dropout_ratio=0.1, num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.005),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=2.)}))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=160000,
        by_epoch=False)
]
train_dataloader = dict(batch_size=4)

custom_hooks = [
    dict(type='PaddingAwarePruningHook'),
    dict(type='TokenStatsHook', interval=50),
]
