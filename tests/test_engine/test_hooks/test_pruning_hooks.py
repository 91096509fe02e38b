"""RetentionScheduleHook, TokenStatsHook and PaddingAwarePruningHook in
real training iterations of a tiny pruned model."""
import pytest
from mmengine.runner import Runner

import mmtpspike  # noqa: F401
from mmtpspike.engine.hooks import RetentionScheduleHook
from toy_runner import toy_pruning_runner_cfg


def test_retention_schedule_values():
    hook = RetentionScheduleHook(target=0.5, begin=2, end=6)
    assert [hook.ratios_at(i) for i in (0, 2, 4, 6, 9)] == [
        1.0, 1.0, 0.75, 0.5, 0.5
    ]
    per_stage = RetentionScheduleHook(target=[0.6, 0.8], begin=0, end=4)
    assert per_stage.ratios_at(2) == pytest.approx([0.8, 0.9])
    with pytest.raises(ValueError, match='end > begin'):
        RetentionScheduleHook(target=0.5, begin=3, end=3)
    with pytest.raises(ValueError, match='target'):
        RetentionScheduleHook(target=1.5)
    with pytest.raises(ValueError, match='mlp_keep_ratios'):
        RetentionScheduleHook(target=0.5, mlp_target=0.0)
    both = RetentionScheduleHook(target=0.5, conv_target=0.8, end=4)
    assert both.ratios_at(2, 'conv_keep_ratios') == pytest.approx(0.9)


def test_retention_schedule_in_training(tmp_path):
    seen = []
    cfg = toy_pruning_runner_cfg(
        str(tmp_path),
        [dict(type='RetentionScheduleHook', target=0.5, begin=0, end=4)],
        max_iters=6)
    runner = Runner(**cfg)
    backbone = runner.model.backbone
    backbone.pruner.register_record_hook(
        lambda record: seen.append(record.keep_ratio)
        if record.block_name == 'stages.2.blocks.0' else None)
    runner.train()
    assert seen == pytest.approx([1.0, 0.875, 0.75, 0.625, 0.5, 0.5])
    assert backbone.pruner.keep_ratios == [0.5, 0.5, 0.5]
    scalars = runner.message_hub.get_scalar('train/keep_ratio_target')
    assert scalars.current() == pytest.approx(0.5)


def test_retention_schedule_moves_the_mlp_ratios_too(tmp_path):
    cfg = toy_pruning_runner_cfg(
        str(tmp_path), [dict(type='RetentionScheduleHook', target=0.5,
                             mlp_target=0.75, begin=0, end=4)],
        max_iters=6, pruning_options=dict(mlp_keep_ratios=1.0))
    runner = Runner(**cfg)
    runner.train()
    pruner = runner.model.backbone.pruner
    assert pruner.keep_ratios == [0.5] * 3
    assert pruner.mlp_keep_ratios == [0.75] * 3


@pytest.mark.parametrize('hook, options, message', [
    (dict(target=0.5), dict(mlp_keep_ratios=1.0), 'give .*mlp_target'),
    (dict(target=0.5), dict(conv_keep_ratios=1.0), 'give .*conv_target'),
    (dict(target=0.5, mlp_target=0.5), {}, 'no pruning.mlp_keep_ratios'),
    (dict(target=0.5), dict(dynamic=dict(mass=0.8)),
     'cannot schedule pruning.dynamic'),
])
def test_retention_schedule_refuses_what_it_cannot_schedule(
        tmp_path, hook, options, message):
    """It never leaves a ratio behind: it used to set keep_ratios only, and
    set_keep_ratios was silently ignored under dynamic retention."""
    cfg = toy_pruning_runner_cfg(
        str(tmp_path), [dict(type='RetentionScheduleHook', **hook)],
        max_iters=1, pruning_options=options)
    with pytest.raises(ValueError, match=message):
        Runner(**cfg).train()


def test_token_stats_in_log(tmp_path):
    cfg = toy_pruning_runner_cfg(
        str(tmp_path), [dict(type='PaddingAwarePruningHook'),
                        dict(type='TokenStatsHook', interval=2)],
        max_iters=4, keep_ratios=0.5)
    runner = Runner(**cfg)
    runner.train()
    hub = runner.message_hub
    keep = hub.get_scalar('train/tokens/keep_stages.2.blocks.0').current()
    # 4 x 4 tokens at stride 16; valid areas differ per image, ratio ~ 0.5
    assert 0.5 <= keep < 0.7
    rate = hub.get_scalar('train/spikes/rate_all').current()
    assert 0 < rate < 1
    assert hub.get_scalar('train/spikes/rate_stage3').current() > 0
    text = ''.join(f.read_text() for f in tmp_path.rglob('*.log'))
    assert 'tokens/keep_stages.2.blocks.0' in text
    assert 'spikes/rate_all' in text


def test_padding_aware_hook_passes_img_shapes(tmp_path):
    cfg = toy_pruning_runner_cfg(
        str(tmp_path), [dict(type='PaddingAwarePruningHook')], max_iters=2,
        keep_ratios=0.5)
    runner = Runner(**cfg)
    records = []
    runner.model.backbone.pruner.register_record_hook(records.append)
    runner.train()
    first = records[0]
    # image 1 of the toy set is 56 x 48: 4 x 3 valid tokens at stride 16
    assert first.valid[1].sum() == 12
    assert not (first.kept & ~first.valid).any()


def test_schedule_without_pruned_backbone_fails(tmp_path):
    from toy_runner import toy_runner_cfg
    cfg = toy_runner_cfg(str(tmp_path), max_iters=1)
    cfg['custom_hooks'] = [dict(type='RetentionScheduleHook', target=0.5)]
    with pytest.raises(RuntimeError, match='no backbone with token pruning'):
        Runner(**cfg).train()
