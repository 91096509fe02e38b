"""SpikingCheckpointHook: neuron settings and keep ratios in checkpoints."""
import pytest
from mmengine.runner import Runner

import mmtpspike  # noqa: F401
from mmtpspike.utils import safe_load_checkpoint
from mmtpspike.utils.spiking_meta import NeuronMismatchError
from toy_runner import toy_pruning_runner_cfg


def _train_with_schedule(work_dir) -> str:
    """Train the toy pruned classifier while keep falls to 0.5; returns the
    last checkpoint."""
    cfg = toy_pruning_runner_cfg(
        str(work_dir),
        [dict(type='RetentionScheduleHook', target=0.5, begin=0, end=2),
         dict(type='SpikingCheckpointHook')], max_iters=3)
    cfg['default_hooks']['checkpoint'] = dict(
        type='CheckpointHook', interval=3, by_epoch=False)
    Runner(**cfg).train()
    return str(work_dir / 'iter_3.pth')


@pytest.fixture(scope='module')
def scheduled_checkpoint(tmp_path_factory):
    return _train_with_schedule(tmp_path_factory.mktemp('schedule'))


def _loading_runner(work_dir, checkpoint, hook_args=None, **model_args):
    hook = dict(type='SpikingCheckpointHook', **(hook_args or {}))
    cfg = toy_pruning_runner_cfg(str(work_dir), [hook], keep_ratios=1.0,
                                 **model_args)
    cfg['load_from'] = checkpoint
    return Runner(**cfg)


def test_meta_records_neurons_and_reached_ratios(scheduled_checkpoint):
    meta = safe_load_checkpoint(scheduled_checkpoint)['meta']['mmtpspike']
    assert meta == {
        'backbone': dict(
            neurons=dict(type='MultiSpike', max_spikes=4, num_timesteps=1),
            keep_ratios=[0.5, 0.5, 0.5], mlp_keep_ratios=None,
            conv_keep_ratios=None)
    }


def test_saved_ratios_are_applied_when_asked(tmp_path, scheduled_checkpoint):
    runner = _loading_runner(tmp_path, scheduled_checkpoint,
                             dict(apply_keep_ratios=True))
    runner.load_or_resume()
    assert runner.model.backbone.pruner.keep_ratios == [0.5, 0.5, 0.5]


def test_saved_ratios_are_only_logged_by_default(tmp_path, monkeypatch,
                                                 scheduled_checkpoint):
    from mmtpspike.engine.hooks import spiking_checkpoint_hook
    logged = []
    monkeypatch.setattr(spiking_checkpoint_hook, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    runner = _loading_runner(tmp_path, scheduled_checkpoint)
    runner.load_or_resume()
    assert runner.model.backbone.pruner.keep_ratios == [1.0, 1.0, 1.0]
    assert logged == ['backbone: the checkpoint ran with keep_ratios 0.5; '
                      'this run uses keep_ratios 1.0']


def test_saved_mlp_ratios_are_applied_too(tmp_path):
    """A schedule moves mlp_keep_ratios as well; testing the checkpoint
    applies the ratios it reached, all of them."""
    cfg = toy_pruning_runner_cfg(
        str(tmp_path / 'train'),
        [dict(type='RetentionScheduleHook', target=0.5, mlp_target=0.75,
              begin=0, end=2),
         dict(type='SpikingCheckpointHook')], max_iters=3,
        pruning_options=dict(mlp_keep_ratios=1.0))
    cfg['default_hooks']['checkpoint'] = dict(
        type='CheckpointHook', interval=3, by_epoch=False)
    Runner(**cfg).train()
    runner = _loading_runner(
        tmp_path / 'test', str(tmp_path / 'train' / 'iter_3.pth'),
        dict(apply_keep_ratios=True),
        pruning_options=dict(mlp_keep_ratios=1.0))
    runner.load_or_resume()
    assert runner.model.backbone.pruner.keep_ratios == [0.5] * 3
    assert runner.model.backbone.pruner.mlp_keep_ratios == [0.75] * 3


@pytest.mark.parametrize('model_args', [
    dict(spike_cfg=dict(type='MultiSpike', max_spikes=2)),
    dict(num_timesteps=2),
])
def test_other_neuron_settings_refuse_the_weights(tmp_path,
                                                  scheduled_checkpoint,
                                                  model_args):
    runner = _loading_runner(tmp_path, scheduled_checkpoint, **model_args)
    with pytest.raises(NeuronMismatchError) as err:
        runner.load_or_resume()
    message = str(err.value)
    assert "'max_spikes': 4" in message and 'allow_neuron_mismatch' in message


def test_explicit_override_loads_with_a_warning(tmp_path,
                                                scheduled_checkpoint):
    runner = _loading_runner(
        tmp_path, scheduled_checkpoint, dict(allow_neuron_mismatch=True),
        spike_cfg=dict(type='MultiSpike', max_spikes=2))
    with pytest.warns(UserWarning, match='loading anyway'):
        runner.load_or_resume()
