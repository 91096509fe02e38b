"""tools/train.py records neuron settings and keep ratios in checkpoints;
tools/test.py evaluates at the saved ratios unless told otherwise (both
tools' ``main(argv)`` run in process: 2 training iterations, 1 test
image)."""
import pytest

from mmtpspike.utils import safe_load_checkpoint
from tool_runner import call_main


def run_main(*args) -> str:
    """A tool's ``main(argv)`` run to success; its output."""
    result = call_main(*args)
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-3000:])
    return result.stdout + result.stderr


SEG_TP_DEMO = 'configs/seg/sdtv3_tp_ade20k_demo.py'
SHORT = ['train_cfg.max_iters=2', 'train_cfg.val_interval=100',
         'default_hooks.checkpoint.interval=2',
         'train_dataloader.batch_size=2']


@pytest.fixture(scope='module')
def scheduled_checkpoint(tmp_path_factory, repo_root_path):
    """Two iterations with the keep ratio falling to 0.5."""
    work_dir = tmp_path_factory.mktemp('meta')
    config = work_dir / 'schedule.py'
    config.write_text(
        f"_base_ = '{repo_root_path}/{SEG_TP_DEMO}'\n"
        "custom_hooks = [dict(type='PaddingAwarePruningHook'),\n"
        "                dict(type='RetentionScheduleHook', target=0.5,\n"
        "                     begin=0, end=1)]\n")
    run_main('tools/train.py', str(config), '--work-dir', str(work_dir),
             '--cfg-options', *SHORT)
    return str(work_dir / 'iter_2.pth')


@pytest.fixture(scope='module')
def repo_root_path():
    import os
    return os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))


def test_train_records_neurons_and_ratios(scheduled_checkpoint):
    meta = safe_load_checkpoint(scheduled_checkpoint)['meta']['mmtpspike']
    assert meta['backbone']['neurons'] == dict(
        type='MultiSpike', max_spikes=4, num_timesteps=1)
    assert meta['backbone']['keep_ratios'] == [0.5] * 8


def test_test_uses_the_saved_ratios(scheduled_checkpoint, tmp_path):
    out = run_main('tools/test.py', SEG_TP_DEMO, scheduled_checkpoint,
                   '--work-dir', str(tmp_path), '--cfg-options',
                   'test_dataloader.dataset.indices=1')
    assert ('backbone: using the ratios saved in the checkpoint '
            '(keep_ratios 0.5)') in out


def test_command_line_ratios_win(scheduled_checkpoint, tmp_path):
    out = run_main('tools/test.py', SEG_TP_DEMO, scheduled_checkpoint,
                   '--work-dir', str(tmp_path), '--cfg-options',
                   'test_dataloader.dataset.indices=1',
                   'model.backbone.pruning.keep_ratios=0.9')
    assert ('backbone: the checkpoint ran with keep_ratios 0.5; this run '
            'uses keep_ratios 0.9') in out
