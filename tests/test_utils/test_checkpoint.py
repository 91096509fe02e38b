"""Runner checkpoints under torch.load(weights_only=True)."""
import os

import pytest
import torch
from mmengine.runner import Runner

import mmtpspike  # noqa: F401
from mmtpspike.utils import UnsafeCheckpointError, safe_load_checkpoint
from toy_runner import toy_runner_cfg


class _Payload:
    """Unpickling this runs os.getcwd: the kind of object to refuse."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_save_and_resume_runner_checkpoint(tmp_path):
    Runner(**toy_runner_cfg(str(tmp_path), max_iters=4)).train()
    assert (tmp_path / 'iter_4.pth').is_file()
    checkpoint = safe_load_checkpoint(str(tmp_path / 'iter_4.pth'))
    assert checkpoint['meta']['iter'] == 4
    assert 'message_hub' in checkpoint
    cfg = toy_runner_cfg(str(tmp_path), max_iters=6)
    cfg['resume'] = True
    runner = Runner(**cfg)
    runner.train()
    assert runner.iter == 6


def test_load_from_runner_checkpoint(tmp_path):
    Runner(**toy_runner_cfg(str(tmp_path / 'a'), max_iters=2)).train()
    cfg = toy_runner_cfg(str(tmp_path / 'b'), max_iters=2)
    cfg['load_from'] = str(tmp_path / 'a' / 'iter_2.pth')
    runner = Runner(**cfg)
    runner.train()
    assert runner.iter == 2


def test_unexpected_object_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': _Payload()}, path)
    with pytest.raises(UnsafeCheckpointError, match='posix.getcwd'):
        safe_load_checkpoint(path)
    cfg = toy_runner_cfg(str(tmp_path / 'run'), max_iters=1)
    cfg['load_from'] = path
    with pytest.raises(UnsafeCheckpointError, match='not a tensor'):
        Runner(**cfg).train()


def test_getattr_is_limited_to_history_buffer(tmp_path):
    from mmtpspike.utils.checkpoint import _history_buffer_method
    from mmengine.logging.history_buffer import HistoryBuffer
    assert _history_buffer_method(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(UnsafeCheckpointError):
        _history_buffer_method(os, 'system')
    with pytest.raises(UnsafeCheckpointError):
        _history_buffer_method(HistoryBuffer, '__init__')


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        safe_load_checkpoint(str(tmp_path / 'nope.pth'))
