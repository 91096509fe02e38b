"""QKFormer configs: build, strides / channels consistent with the heads, and
a short run of the pruned detection demo on the mini set."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401

CONFIG_ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
DET_CONFIGS = sorted(glob.glob(os.path.join(CONFIG_ROOT, 'det',
                                            'qkformer_*.py')))
SEG_CONFIGS = sorted(glob.glob(os.path.join(CONFIG_ROOT, 'seg',
                                            'qkformer_*.py')))
STRIDES = [4, 8, 16, 32]


def build_model(path: str, scope: str):
    """The config and its model, built without the pretrained weights."""
    cfg = Config.fromfile(path)
    assert cfg.default_scope == scope
    assert 'mmtpspike' in cfg.custom_imports.imports
    assert 'PaddingAwarePruningHook' in [h['type'] for h in cfg.custom_hooks]
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    cfg.model.backbone.init_cfg = None
    return cfg, MODELS.build(cfg.model)


def check_backbone(cfg: Config, backbone, path: str) -> None:
    name = os.path.basename(path)
    assert type(backbone).__name__ == 'QKFormer'
    assert backbone.out_strides == STRIDES
    assert cfg.model.neck.in_channels == backbone.out_channels
    if name.endswith('_demo.py'):
        assert backbone.num_timesteps == 2
        assert backbone.embed_dims == [24, 48, 96]
    else:
        assert backbone.num_timesteps == 4
        assert backbone.embed_dims == [96, 192, 384]
        init = Config.fromfile(path).model.backbone.init_cfg
        assert init.type == 'Pretrained' and init.checkpoint.endswith('.pth')
    if '_tp_' in name:
        keep = backbone.pruner.keep_ratios
        assert len(keep) == sum(backbone.depths)
        assert set(keep) == {0.78 if '/det/' in path else 0.56}
    else:
        assert backbone.pruner is None


def test_six_configs():
    names = [os.path.basename(p) for p in DET_CONFIGS + SEG_CONFIGS]
    assert names == [
        'qkformer_coco_demo.py', 'qkformer_tp_coco.py',
        'qkformer_tp_coco_demo.py', 'qkformer_ade20k_demo.py',
        'qkformer_tp_ade20k.py', 'qkformer_tp_ade20k_demo.py'
    ]


@pytest.mark.parametrize('path', DET_CONFIGS, ids=os.path.basename)
def test_det_config_builds_consistently(path):
    cfg, detector = build_model(path, 'mmdet')
    check_backbone(cfg, detector.backbone, path)
    assert type(detector.neck).__name__ == 'FPN'
    assert cfg.model.neck.num_outs == 5
    assert cfg.model.rpn_head.anchor_generator.strides == STRIDES + [64]
    assert cfg.model.roi_head.bbox_roi_extractor.featmap_strides == STRIDES
    assert cfg.model.roi_head.mask_roi_extractor.featmap_strides == STRIDES
    assert cfg.model.rpn_head.in_channels == cfg.model.neck.out_channels


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=os.path.basename)
def test_seg_config_builds_consistently(path):
    cfg, segmentor = build_model(path, 'mmseg')
    check_backbone(cfg, segmentor.backbone, path)
    assert type(segmentor.neck).__name__ == 'FPN'
    assert cfg.model.decode_head.feature_strides == STRIDES
    assert cfg.model.decode_head.in_channels == \
        [cfg.model.neck.out_channels] * 4


@pytest.mark.slow  # quick: test_demo_runs.py
def test_det_demo_trains_two_iterations_and_tests(tmp_path):
    from mmengine.runner import Runner
    cfg = Config.fromfile([p for p in DET_CONFIGS
                           if p.endswith('qkformer_tp_coco_demo.py')][0])
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
    records = runner.model.backbone.token_records
    assert len(records) == 5
    padded = [r for r in records if not r.valid.all()]
    assert padded, 'the test batch should hold images of different sizes'
    for record in records:
        assert not (record.kept & ~record.valid).any()
        kept = record.kept.sum() / record.valid.sum()
        assert float(kept) == pytest.approx(0.78, abs=0.05)
