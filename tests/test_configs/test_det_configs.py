"""SDT-V3 detection configs: build, strides, plug-in into stock configs."""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401

DET_CONFIGS = sorted(glob.glob(os.path.join(
    os.path.dirname(__file__), '..', '..', 'configs', 'det', 'sdtv3_*.py')))


def build_detector(cfg):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('path', DET_CONFIGS, ids=os.path.basename)
def test_det_config_builds_with_consistent_strides(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert 'mmtpspike' in cfg.custom_imports.imports
    assert not cfg.get('load_from')
    detector = build_detector(cfg)
    backbone = detector.backbone
    assert type(backbone).__name__ == 'SDTV3'
    assert type(detector.neck).__name__ == 'SpikeFPN'
    assert cfg.model.neck.in_channels == backbone.out_channels
    strides = backbone.out_strides
    assert cfg.model.rpn_head.anchor_generator.strides[:4] == strides
    assert cfg.model.roi_head.bbox_roi_extractor.featmap_strides == strides
    assert cfg.model.roi_head.mask_roi_extractor.featmap_strides == strides
    if '_tp_fast' in os.path.basename(path):  # fast and fastest
        assert set(backbone.pruner.keep_ratios) == {0.56}  # see test_fast
    elif '_tp_' in os.path.basename(path):
        keep = backbone.pruner.keep_ratios
        assert sum(keep) / len(keep) == pytest.approx(0.78)
    else:
        assert backbone.pruner is None
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert 'PaddingAwarePruningHook' in hooks


def test_full_configs_follow_public_recipe():
    cfg = Config.fromfile([p for p in DET_CONFIGS
                           if p.endswith('sdtv3_tp_coco.py')][0])
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.param_scheduler[1].milestones == [8, 11]
    scales = cfg.train_dataloader.dataset.pipeline[2].scales
    assert min(s[1] for s in scales) == 480 and max(s[1]
                                                    for s in scales) == 800
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (1333, 800)
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    assert cfg.model.backbone.embed_dims == [64, 128, 256, 360]


PLUG_IN_CFG = """
_base_ = 'mmdet::{base}'
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='SDTV3', arch='t', stage4_stride=2,
                  out_indices=(1, 2, 3), pruning=dict(keep_ratios=0.78)),
    neck=dict(in_channels=[48, 96, 128], start_level=0))
custom_hooks = [dict(type='PaddingAwarePruningHook')]
"""


@pytest.mark.parametrize('base', ['retinanet/retinanet_r50_fpn_1x_coco.py',
                                  'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'])
def test_stock_detector_with_pruned_backbone_trains(tmp_path, base):
    from mmdet.testing import demo_mm_inputs
    path = tmp_path / 'plug_in.py'
    path.write_text(PLUG_IN_CFG.format(base=base))
    cfg = Config.fromfile(str(path))
    detector = build_detector(cfg).train()
    assert type(detector.backbone).__name__ == 'SDTV3'
    packed = demo_mm_inputs(2, [[3, 96, 128], [3, 80, 112]], num_items=[2, 1],
                            num_classes=80)
    data = detector.data_preprocessor(packed, True)
    detector.backbone.set_img_shapes(
        [s.img_shape for s in data['data_samples']],
        data['inputs'].shape[-2:])
    losses = detector.loss(data['inputs'], data['data_samples'])
    total, _ = detector.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    grad = detector.backbone.stages[2].blocks[0].attn.q_conv[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0
    kept = detector.backbone.token_records[0]
    assert not (kept.kept & ~kept.valid).any()
