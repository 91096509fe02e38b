"""The fast and fastest configs: the speed options that pay off at keep
0.56, on the SDT-V3-L recipe; their demo variants train and test on the mini
sets."""
import os

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401

CONFIG_ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
FAST = {
    'mmdet': ('det/sdtv3_tp_fast_coco.py', 'det/sdtv3_tp_coco.py'),
    'mmseg': ('seg/sdtv3_tp_fast_ade20k.py', 'seg/sdtv3_tp_ade20k.py'),
}


def config(name: str) -> Config:
    return Config.fromfile(os.path.join(CONFIG_ROOT, name))


def build(cfg: Config, scope: str):
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('scope', sorted(FAST))
def test_fast_config_is_the_l_recipe_with_the_mixer_skipped(scope):
    fast_name, plain_name = FAST[scope]
    fast, plain = config(fast_name), config(plain_name)
    pruning = dict(fast.model.backbone.pruning)
    assert pruning.pop('skip_mixer') is True
    assert 'conv_keep_ratios' not in pruning  # no faster on CPU, see docs
    assert pruning['keep_ratios'] == 0.56
    fast.model.backbone.pop('pruning')
    plain.model.backbone.pop('pruning')
    assert fast.model == plain.model  # SDT-V3-L, same heads
    assert fast.optim_wrapper == plain.optim_wrapper
    backbone = build(config(fast_name), scope).backbone
    assert backbone.pruner.conv_keep_ratios is None
    assert backbone.pruner.skip_mixer


FASTEST = {
    'mmdet': ('det/sdtv3_tp_fastest_coco.py', 'det/sdtv3_tp_fast_coco.py'),
    'mmseg': ('seg/sdtv3_tp_fastest_ade20k.py',
              'seg/sdtv3_tp_fast_ade20k.py'),
}


@pytest.mark.parametrize('scope', sorted(FASTEST))
def test_fastest_config_is_the_fast_one_with_conv_tiles(scope):
    fastest_name, fast_name = FASTEST[scope]
    fastest, fast = config(fastest_name), config(fast_name)
    pruning = dict(fastest.model.backbone.pruning)
    assert pruning.pop('conv_keep_ratios') == 0.56
    assert pruning.pop('conv_tile') == 8
    assert pruning == dict(fast.model.backbone.pruning)
    fastest.model.backbone.pop('pruning')
    fast.model.backbone.pop('pruning')
    assert fastest.model == fast.model
    backbone = build(config(fastest_name), scope).backbone
    assert backbone.pruner.conv_keep_ratios == [0.56] * 4  # stem, 1, 2, 2
    assert backbone.pruner.config.conv_tile == 8


def short_run(cfg: Config, work_dir) -> dict:
    """Train 2 iterations, test; the test metrics."""
    from mmengine.runner import Runner
    cfg.work_dir = str(work_dir)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
    cfg.param_scheduler = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2,
                                        by_epoch=False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert os.path.isfile(os.path.join(work_dir, 'iter_2.pth'))
    metrics = runner.test()
    records = runner.model.backbone.token_records
    assert [r.block_name for r in records] == [
        f'stages.{stage}.blocks.{block}'
        for stage, depth in ((2, 6), (3, 2)) for block in range(depth)]
    for record in records:
        assert record.realised_keep_ratio == pytest.approx(0.56, abs=0.03)
    return metrics


@pytest.mark.slow  # quick: test_demo_runs.py
def test_fast_det_demo_trains_and_tests(tmp_path):
    metrics = short_run(config('det/sdtv3_tp_fast_coco_demo.py'), tmp_path)
    assert 0 <= metrics['coco/bbox_mAP'] <= 1


@pytest.mark.slow  # quick: test_demo_runs.py
def test_fast_seg_demo_trains_and_tests(tmp_path):
    metrics = short_run(config('seg/sdtv3_tp_fast_ade20k_demo.py'), tmp_path)
    assert 0 <= metrics['mIoU'] <= 100
