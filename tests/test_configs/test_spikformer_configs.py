"""Spikformer configs: every one builds, strides / channels agree from the
backbone through SimplePyramidAdapter and FPN to the heads, and the TP demo
detector trains two iterations and tests on the mini COCO set."""
import copy
import functools
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401

CONFIG_ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
CONFIGS = {
    task: sorted(glob.glob(os.path.join(CONFIG_ROOT, task, 'spikformer_*')))
    for task in ('det', 'seg')
}
SCOPES = {'det': 'mmdet', 'seg': 'mmseg'}
KEEP = {'det': 0.78, 'seg': 0.56}
PYRAMID_STRIDES = [4, 8, 16, 32]


@functools.lru_cache(maxsize=None)
def _parsed(path: str) -> Config:
    return Config.fromfile(path)


def load_config(path: str) -> Config:
    """A fresh copy of the config (each file is parsed once per session)."""
    return copy.deepcopy(_parsed(path))


def config_named(name: str) -> Config:
    task = 'det' if 'coco' in name else 'seg'
    return load_config(os.path.join(CONFIG_ROOT, task, name))


def build_model(cfg: Config, task: str):
    """The config's model, without loading the pretrained checkpoint."""
    scope = SCOPES[task]
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    init_default_scope(scope)
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    return registry.build(cfg.model)


def check_backbone_and_neck(cfg: Config, model, name: str, task: str):
    """Checks shared by both tasks; returns the FPN's width."""
    assert cfg.default_scope == SCOPES[task]
    assert 'mmtpspike' in cfg.custom_imports.imports
    assert 'PaddingAwarePruningHook' in [h['type'] for h in cfg.custom_hooks]
    backbone = model.backbone
    assert type(backbone).__name__ == 'Spikformer'
    adapter, fpn = model.neck
    assert type(adapter).__name__ == 'SimplePyramidAdapter'
    assert type(fpn).__name__ == 'FPN'
    adapter_cfg, fpn_cfg = cfg.model.neck
    assert adapter_cfg.in_channels == backbone.out_channels[-1]
    assert fpn_cfg.in_channels == [adapter_cfg.out_channels] * 4
    assert [int(backbone.out_strides[-1] / s)
            for s in adapter.scale_factors] == PYRAMID_STRIDES
    if '_tp_' in name:
        assert backbone.pruner.keep_ratios == [KEEP[task]] * backbone.depth
    else:
        assert backbone.pruner is None
    if name.endswith('_demo.py'):
        assert (backbone.num_timesteps, backbone.embed_dims) == (2, 64)
    else:
        assert (backbone.num_timesteps, backbone.embed_dims,
                backbone.depth) == (4, 384, 8)
        init = cfg.model.backbone.init_cfg
        assert init.type == 'Pretrained' and init.checkpoint == cfg.pretrained
        backbone.init_cfg = init  # the user has not put the weights there
        with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint'):
            backbone.init_weights()
    return fpn_cfg.out_channels


def test_six_configs():
    names = sorted(os.path.basename(p) for p in sum(CONFIGS.values(), []))
    assert names == sorted([
        'spikformer_coco_demo.py', 'spikformer_tp_coco_demo.py',
        'spikformer_tp_coco.py', 'spikformer_ade20k_demo.py',
        'spikformer_tp_ade20k_demo.py', 'spikformer_tp_ade20k.py'
    ])


@pytest.mark.parametrize('path', CONFIGS['det'], ids=os.path.basename)
def test_det_config_builds_consistently(path):
    cfg = load_config(path)
    detector = build_model(cfg, 'det')
    channels = check_backbone_and_neck(cfg, detector, os.path.basename(path),
                                       'det')
    assert cfg.model.rpn_head.anchor_generator.strides[:4] == \
        PYRAMID_STRIDES
    assert cfg.model.rpn_head.in_channels == channels
    for extractor in ('bbox_roi_extractor', 'mask_roi_extractor'):
        roi = cfg.model.roi_head[extractor]
        assert roi.featmap_strides == PYRAMID_STRIDES
        assert roi.out_channels == channels


@pytest.mark.parametrize('path', CONFIGS['seg'], ids=os.path.basename)
def test_seg_config_builds_consistently(path):
    cfg = load_config(path)
    segmentor = build_model(cfg, 'seg')
    channels = check_backbone_and_neck(cfg, segmentor,
                                       os.path.basename(path), 'seg')
    assert cfg.model.decode_head.feature_strides == PYRAMID_STRIDES
    assert cfg.model.decode_head.in_channels == [channels] * 4


def test_seg_demo_loss_on_padded_batch():
    cfg = config_named('spikformer_tp_ade20k_demo.py')
    segmentor = build_model(cfg, 'seg').train()
    inputs = torch.rand(2, 3, 128, 128)
    inputs[1, :, 80:] = 0
    segmentor.backbone.set_img_shapes([(128, 128), (80, 128)])
    features = segmentor.extract_feat(inputs)
    assert [f.shape[-1] for f in features] == [128 // s
                                               for s in PYRAMID_STRIDES]
    sum(f.sum() for f in features).backward()
    grad = segmentor.backbone.blocks[0].attn.q.conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    for record in segmentor.backbone.token_records:
        assert not (record.kept & ~record.valid).any()


@pytest.mark.slow  # quick: test_demo_runs.py
def test_det_demo_trains_two_iterations_and_tests(tmp_path):
    from mmengine.runner import Runner
    cfg = config_named('spikformer_tp_coco_demo.py')
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
    cfg.param_scheduler = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # test only
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2,
                                        by_epoch=False)
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert os.path.isfile(tmp_path / 'iter_2.pth')
    metrics = runner.test()
    assert 0 <= metrics['coco/bbox_mAP'] <= 1
    backbone = runner.model.backbone
    assert backbone.token_records
    for record in backbone.token_records:
        assert not (record.kept & ~record.valid).any()
        kept = (record.kept & record.valid).sum() / record.valid.sum()
        assert float(kept) == pytest.approx(0.78, abs=0.05)
