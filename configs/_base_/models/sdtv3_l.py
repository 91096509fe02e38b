# SDT-V3-L (19M) backbone and spiking FPN neck, shared by the detection and
# segmentation configs. A task config lists this file last in its _base_ and
# builds its model from the two variables:
#   backbone=dict(_delete_=True, **_base_.sdtv3_l),
#   neck=dict(_delete_=True, num_outs=..., **_base_.spike_fpn)
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)

# Official SDT-V3 ImageNet checkpoint, supplied by the user (relative to the
# working directory). A missing file is an error that names the fix; set
# model.backbone.init_cfg=None to train from scratch on purpose.
pretrained = 'checkpoints/sdtv3_l_imagenet.pth'
embed_dims = [64, 128, 256, 360]
# stage4_stride=2 gives a true stride-32 fourth map, so the four maps have the
# strides below, which anchor generators, RoI extractors and FPNHead declare.
# (The public code uses stride 1 but declares 32.)
strides = [4, 8, 16, 32]

sdtv3_l = dict(
    type='SDTV3',
    embed_dims=embed_dims,
    stage4_stride=2,
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
# stock FPN instead: type='FPN', same arguments
spike_fpn = dict(type='SpikeFPN', in_channels=embed_dims, out_channels=256)

# PaddingAwarePruningHook tells a pruned backbone where each image's padding
# starts; TokenStatsHook logs realised keep ratios and firing rates.
custom_hooks = [
    dict(type='PaddingAwarePruningHook'),
    dict(type='TokenStatsHook', interval=50),
]
