"""SDT-V3 segmentation configs: build, strides, plug-in into UPerNet."""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401

SEG_CONFIGS = sorted(glob.glob(os.path.join(
    os.path.dirname(__file__), '..', '..', 'configs', 'seg', 'sdtv3_*.py')))


def build_segmentor(cfg):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def seg_batch(segmentor, sizes, num_classes):
    """Preprocessed training batch with random labels and some ignore."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for height, width in sizes:
        inputs.append(torch.randint(0, 255, (3, height, width),
                                    dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, height, width))
        label[:, :4] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(height, width),
                                             ori_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return segmentor.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True)


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=os.path.basename)
def test_seg_config_builds_with_consistent_strides(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert 'mmtpspike' in cfg.custom_imports.imports
    segmentor = build_segmentor(cfg)
    backbone = segmentor.backbone
    assert type(backbone).__name__ == 'SDTV3'
    assert type(segmentor.neck).__name__ == 'SpikeFPN'
    assert cfg.model.neck.in_channels == backbone.out_channels
    assert cfg.model.decode_head.feature_strides == backbone.out_strides
    assert cfg.model.decode_head.dropout_ratio == 0.1
    if '_tp_' in os.path.basename(path):
        keep = backbone.pruner.keep_ratios
        assert sum(keep) / len(keep) == pytest.approx(0.56)
    else:
        assert backbone.pruner is None


def test_full_config_follows_public_recipe():
    cfg = Config.fromfile([p for p in SEG_CONFIGS
                           if p.endswith('sdtv3_tp_ade20k.py')][0])
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.005
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.decode_head.lr_mult == 2
    assert cfg.train_cfg.max_iters == 160000
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLR']
    assert cfg.crop_size == (512, 512)
    assert cfg.train_dataloader.dataset.data_root == \
        'data/ade/ADEChallengeData2016'


PLUG_IN_CFG = """
_base_ = 'mmseg::_base_/models/upernet_r50.py'
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(_delete_=True, type='SDTV3', arch='t', stage4_stride=2,
                  pruning=dict(keep_ratios=0.56)),
    decode_head=dict(in_channels=[24, 48, 96, 128], channels=32,
                     num_classes=5, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=96, channels=16, num_classes=5,
                        norm_cfg=norm_cfg))
custom_hooks = [dict(type='PaddingAwarePruningHook')]
"""


def test_stock_upernet_with_pruned_backbone_trains(tmp_path):
    path = tmp_path / 'upernet.py'
    path.write_text(PLUG_IN_CFG)
    segmentor = build_segmentor(Config.fromfile(str(path))).train()
    data = seg_batch(segmentor, [(64, 64), (64, 64)], 5)
    losses = segmentor.loss(data['inputs'], data['data_samples'])
    total, _ = segmentor.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    grad = segmentor.backbone.stages[2].blocks[0].attn.q_conv[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_ignore_index_labels_do_not_count():
    cfg = Config.fromfile([p for p in SEG_CONFIGS
                           if p.endswith('sdtv3_tp_ade20k_demo.py')][0])
    segmentor = build_segmentor(cfg).train()
    data = seg_batch(segmentor, [(64, 64), (64, 64)], 5)
    for sample in data['data_samples']:
        sample.gt_sem_seg.data[:] = 255
    losses = segmentor.loss(data['inputs'], data['data_samples'])
    assert float(losses['decode.loss_ce']) == 0.0
