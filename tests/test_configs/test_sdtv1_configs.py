"""SDT-V1 configs: build, strides / channels consistent from the backbone
through SimplePyramidAdapter and FPN to the heads, demo training run."""
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
DET_CONFIGS = sorted(glob.glob(os.path.join(CONFIG_ROOT, 'det', 'sdtv1_*')))
SEG_CONFIGS = sorted(glob.glob(os.path.join(CONFIG_ROOT, 'seg', 'sdtv1_*')))
KEEP = {'det': 0.78, 'seg': 0.56}


@functools.lru_cache(maxsize=None)
def _parsed(path: str) -> Config:
    return Config.fromfile(path)


def load_config(path: str) -> Config:
    """A fresh copy of the config (each file is parsed once per session)."""
    return copy.deepcopy(_parsed(path))


def config_named(name: str) -> Config:
    return load_config([p for p in DET_CONFIGS + SEG_CONFIGS
                        if os.path.basename(p) == name][0])


def build_model(cfg, scope: str):
    """The config's model without loading the pretrained checkpoint."""
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    init_default_scope(scope)
    cfg.model.backbone.init_cfg = None
    return registry.build(cfg.model)


def check_backbone_and_neck(cfg, model, path: str, task: str):
    """Common checks; returns the pyramid strides and the neck width."""
    assert 'mmtpspike' in cfg.custom_imports.imports
    backbone = model.backbone
    assert type(backbone).__name__ == 'SDTV1'
    adapter, fpn = model.neck
    assert type(adapter).__name__ == 'SimplePyramidAdapter'
    assert type(fpn).__name__ == 'FPN'
    adapter_cfg, fpn_cfg = cfg.model.neck
    assert adapter_cfg.in_channels == backbone.out_channels[-1]
    assert fpn_cfg.in_channels == [adapter_cfg.out_channels] * len(
        adapter_cfg.scale_factors)
    strides = [int(backbone.out_strides[-1] / s)
               for s in adapter.scale_factors]
    assert strides == [4, 8, 16, 32]
    name = os.path.basename(path)
    if '_tp_' in name:
        keep = backbone.pruner.keep_ratios
        assert len(keep) == backbone.depth
        assert sum(keep) / len(keep) == pytest.approx(KEEP[task])
    else:
        assert backbone.pruner is None
    if '_demo' in name:
        assert backbone.num_timesteps == 2 and backbone.embed_dims <= 64
    else:
        assert backbone.num_timesteps == 4 and backbone.embed_dims == 384
        assert backbone.depth == 8
        init = cfg.model.backbone.init_cfg
        assert init.type == 'Pretrained' and init.checkpoint == cfg.pretrained
    assert 'PaddingAwarePruningHook' in [h['type'] for h in cfg.custom_hooks]
    return strides, fpn_cfg.out_channels


@pytest.mark.parametrize('path', DET_CONFIGS, ids=os.path.basename)
def test_det_config_builds_consistently(path):
    cfg = load_config(path)
    assert cfg.default_scope == 'mmdet'
    detector = build_model(copy.deepcopy(cfg), 'mmdet')
    strides, channels = check_backbone_and_neck(cfg, detector, path, 'det')
    assert cfg.model.rpn_head.anchor_generator.strides[:4] == strides
    assert cfg.model.rpn_head.in_channels == channels
    for extractor in ('bbox_roi_extractor', 'mask_roi_extractor'):
        roi = cfg.model.roi_head[extractor]
        assert roi.featmap_strides == strides
        assert roi.out_channels == channels


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=os.path.basename)
def test_seg_config_builds_consistently(path):
    cfg = load_config(path)
    assert cfg.default_scope == 'mmseg'
    segmentor = build_model(copy.deepcopy(cfg), 'mmseg')
    strides, channels = check_backbone_and_neck(cfg, segmentor, path, 'seg')
    assert cfg.model.decode_head.feature_strides == strides
    assert cfg.model.decode_head.in_channels == [channels] * len(strides)


def test_configs_exist_for_both_tasks():
    names = [os.path.basename(p) for p in DET_CONFIGS + SEG_CONFIGS]
    assert sorted(names) == sorted([
        'sdtv1_coco_demo.py', 'sdtv1_tp_coco_demo.py', 'sdtv1_tp_coco.py',
        'sdtv1_ade20k_demo.py', 'sdtv1_tp_ade20k_demo.py',
        'sdtv1_tp_ade20k.py'
    ])


def test_det_demo_detector_trains_on_padded_batch():
    from mmdet.testing import demo_mm_inputs
    cfg = config_named('sdtv1_tp_coco_demo.py')
    detector = build_model(cfg, 'mmdet').train()
    packed = demo_mm_inputs(2, [[3, 96, 128], [3, 80, 112]],
                            num_items=[2, 1], num_classes=4, with_mask=True)
    data = detector.data_preprocessor(packed, True)
    detector.backbone.set_img_shapes(
        [s.img_shape for s in data['data_samples']],
        data['inputs'].shape[-2:])
    losses = detector.loss(data['inputs'], data['data_samples'])
    total, _ = detector.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    grad = detector.backbone.blocks[0].attn.q_conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    for record in detector.backbone.token_records:
        assert not (record.kept & ~record.valid).any()


@pytest.mark.slow  # quick: test_demo_runs.py
def test_seg_demo_trains_two_iterations_and_tests(tmp_path):
    from mmengine.runner import Runner
    cfg = config_named('sdtv1_tp_ade20k_demo.py')
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # test only
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert os.path.isfile(tmp_path / 'iter_2.pth')
    metrics = runner.test()
    assert 0 <= metrics['mIoU'] <= 100
    backbone = runner.model.backbone
    for record in backbone.token_records:
        kept = (record.kept & record.valid).sum() / record.valid.sum()
        assert float(kept) == pytest.approx(0.56, abs=0.05)
