# Mask R-CNN + spiking FPN with the dense SDT-V3-L (19M) backbone on COCO,
# public SDT-V3 recipe: AdamW lr 2e-4 wd 0.05, 1x (12 epochs, steps at 8 and
# 11), multi-scale 480-800 training, 1333 x 800 test.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py', '../_base_/models/sdtv3_l.py'
]
strides = _base_.strides

model = dict(
    backbone=dict(_delete_=True, **_base_.sdtv3_l),
    neck=dict(_delete_=True, num_outs=5, **_base_.spike_fpn),
    rpn_head=dict(
        anchor_generator=dict(strides=strides + [strides[-1] * 2])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=strides),
        mask_roi_extractor=dict(featmap_strides=strides)))

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, short) for short in range(480, 801, 32)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.))

# One seed for the initial weights, the data order and the augmentations,
# inherited by every config built on this one (demos and report variants
# included). Multi-threaded CPU kernels still add run-to-run noise; README
# gives the spread measured on the demo.
randomness = dict(seed=0)
