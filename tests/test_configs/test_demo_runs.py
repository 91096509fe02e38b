"""Every backbone's pruned demo configs run through mmengine's Runner: one
training iteration on 2 images, a checkpoint, then the test loop and its
evaluator on 2 images, with the keep ratio of the config on the valid
tokens only.

This is the quick smoke test of the configs; the longer runs (2 iterations,
the whole mini test set, the tools' command line) are in the slow tier
(test_*_configs.py, tests/test_tools).
"""
import os

import pytest
from mmengine.config import Config

import mmtpspike  # noqa: F401

CONFIG_ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
# config: (backbone class, test metric and its range, keep ratio)
DET = ('coco/bbox_mAP', 0, 1, 0.78)
SEG = ('mIoU', 0, 100, 0.56)
# the first test samples lie in the first 0.5 s, which the Prophesee
# protocol skips: no ground truth is scored, COCO's AP is -1
EVENT_DET = ('prophesee/mAP', -1, 1, 0.78)
DEMOS = {
    'det/sdtv3_tp_coco_demo.py': ('SDTV3', ) + DET,
    'seg/sdtv3_tp_ade20k_demo.py': ('SDTV3', ) + SEG,
    'det/sdtv3_tp_fast_coco_demo.py': ('SDTV3', ) + DET[:3] + (0.56, ),
    'seg/sdtv3_tp_fast_ade20k_demo.py': ('SDTV3', ) + SEG,
    'det/sdtv3_tp_fastest_coco_demo.py': ('SDTV3', ) + DET[:3] + (0.56, ),
    'seg/sdtv3_tp_fastest_ade20k_demo.py': ('SDTV3', ) + SEG,
    'det/sdtv1_tp_coco_demo.py': ('SDTV1', ) + DET,
    'seg/sdtv1_tp_ade20k_demo.py': ('SDTV1', ) + SEG,
    'det/spikformer_tp_coco_demo.py': ('Spikformer', ) + DET,
    'seg/spikformer_tp_ade20k_demo.py': ('Spikformer', ) + SEG,
    'det/qkformer_tp_coco_demo.py': ('QKFormer', ) + DET,
    'seg/qkformer_tp_ade20k_demo.py': ('QKFormer', ) + SEG,
    'event_det/sdtv3_tp_gen1_demo.py': ('SDTV3', ) + EVENT_DET,
}
IMAGES = 2


def one_iteration(cfg: Config, work_dir: str) -> Config:
    """The config cut to 1 training iteration on the first IMAGES images in
    one batch, and a test on the first IMAGES images in batches of the
    config's size (mmseg tests one image per batch), without validation."""
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1)
    cfg.param_scheduler = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        by_epoch=False)
    cfg.default_hooks.logger.interval = 1
    cfg.train_dataloader.batch_size = IMAGES
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].dataset.indices = IMAGES
    return cfg


def test_every_pruned_demo_is_listed():
    """A new backbone's pruned demo config joins the smoke test below."""
    found = sorted(
        f'{task}/{name}' for task in ('det', 'seg', 'event_det')
        for name in os.listdir(os.path.join(CONFIG_ROOT, task))
        if '_tp_' in name and name.endswith('_demo.py'))
    assert found == sorted(DEMOS)


@pytest.mark.parametrize('name', sorted(DEMOS))
def test_demo_trains_one_iteration_and_tests(tmp_path, name):
    from mmengine.runner import Runner
    backbone_type, metric, low, high, keep = DEMOS[name]
    cfg = one_iteration(Config.fromfile(os.path.join(CONFIG_ROOT, name)),
                        str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    assert os.path.isfile(tmp_path / 'iter_1.pth')
    metrics = runner.test()
    assert low <= metrics[metric] <= high, metrics
    backbone = runner.model.backbone
    assert type(backbone).__name__ == backbone_type
    # the records of the last test batch: T rows per image
    rows = backbone.num_timesteps * min(cfg.test_dataloader.batch_size,
                                        IMAGES)
    records = backbone.token_records
    assert records, 'no block recorded its kept tokens'
    for record in records:
        assert record.kept.shape == record.valid.shape
        assert record.kept.shape[0] == rows, (record.block_name,
                                              record.kept.shape)
        assert not (record.kept & ~record.valid).any(), record.block_name
        assert record.realised_keep_ratio == pytest.approx(keep, abs=0.05), \
            record.block_name
