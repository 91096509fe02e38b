# TP-Spikformer on the QKFormer 10-384 (T=4) backbone for ADE20K: Semantic
# FPN (stock FPN neck + FPNHead) with the recipe of sdtv3_ade20k.py (512 x 512
# crops, 160k iterations, AdamW lr 1e-3), token early stopping in all 10
# blocks at 56 % retention. with_stride32 adds a newly initialised stride-32
# stage. Initialised from the public QKFormer 10-384 ImageNet checkpoint,
# supplied by the user at `pretrained` (relative to the working directory; a
# missing file is an error). Training-free use:
#   python tools/test.py configs/seg/qkformer_tp_ade20k.py dense.pth
_base_ = ['./sdtv3_ade20k.py', '../_base_/pruning/tp_56.py']

pretrained = 'checkpoints/qkformer_10_384_imagenet.pth'
embed_dims = [96, 192, 384]
neck_channels = 256

model = dict(
    backbone=dict(
        _delete_=True,
        type='QKFormer',
        arch='10-384',
        num_timesteps=4,
        with_stride32=True,
        drop_path_rate=0.1,
        pruning=_base_.pruning,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=embed_dims + embed_dims[-1:],
        out_channels=neck_channels,
        num_outs=4),
    decode_head=dict(in_channels=[neck_channels] * 4))
