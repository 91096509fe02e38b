"""The fast configs: every speed option that pays off at keep 0.56, on the
SDT-V3-L recipe; their demo variants train and test on the mini sets."""
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
def test_fast_config_is_the_l_recipe_with_every_speed_option(scope):
    fast_name, plain_name = FAST[scope]
    fast, plain = config(fast_name), config(plain_name)
    pruning = dict(fast.model.backbone.pruning)
    assert pruning.pop('skip_mixer') is True
    assert pruning.pop('conv_keep_ratios') == [1.0, 0.56, 0.56]
    assert pruning['keep_ratios'] == 0.56
    fast.model.backbone.pop('pruning')
    plain.model.backbone.pop('pruning')
    assert fast.model == plain.model  # SDT-V3-L, same heads
    assert fast.optim_wrapper == plain.optim_wrapper
    backbone = build(config(fast_name), scope).backbone
    assert backbone.pruner.conv_keep_ratios == [1.0, 0.56, 0.56, 0.56]
    assert backbone.pruner.skip_mixer


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
    records = {r.block_name: r for r in runner.model.backbone.token_records}
    # conv stages 1-2 and the transformer blocks stop 44 % of the valid
    # tokens; the stem runs densely
    for name in ('stages.0.blocks.0', 'stages.1.blocks.1',
                 'stages.2.blocks.0', 'stages.3.blocks.1'):
        assert records[name].realised_keep_ratio == pytest.approx(
            0.56, abs=0.03), name
    assert records['stem.blocks.0'].realised_keep_ratio == 1.0
    return metrics


def test_fast_det_demo_trains_and_tests(tmp_path):
    metrics = short_run(config('det/sdtv3_tp_fast_coco_demo.py'), tmp_path)
    assert 0 <= metrics['coco/bbox_mAP'] <= 1


def test_fast_seg_demo_trains_and_tests(tmp_path):
    metrics = short_run(config('seg/sdtv3_tp_fast_ade20k_demo.py'), tmp_path)
    assert 0 <= metrics['mIoU'] <= 100
