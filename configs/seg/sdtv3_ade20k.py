# Semantic FPN (spiking FPN neck + stock FPNHead) with the dense SDT-V3-L
# backbone on ADE20K, public SDT-V3 recipe: 512 x 512 crops, 160k iterations,
# AdamW lr 1e-3 wd 0.005, decode head lr x2, linear warm-up + poly decay.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py', '../_base_/models/sdtv3_l.py'
]
crop_size = (512, 512)

data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(_delete_=True, **_base_.sdtv3_l),
    neck=dict(_delete_=True, num_outs=4, **_base_.spike_fpn),
    decode_head=dict(
        feature_strides=_base_.strides, dropout_ratio=0.1, num_classes=150))

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

# One seed for the initial weights, the data order and the augmentations,
# inherited by every config built on this one (demos and report variants
# included). Multi-threaded CPU kernels still add run-to-run noise; README
# gives the spread measured on the demo.
randomness = dict(seed=0)
