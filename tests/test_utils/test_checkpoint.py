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


def _runner_checkpoint(tmp_path) -> str:
    """A real mmengine runner checkpoint (numpy and HistoryBuffer inside)."""
    Runner(**toy_runner_cfg(str(tmp_path / 'toy'), max_iters=2)).train()
    return str(tmp_path / 'toy' / 'iter_2.pth')


def _evil_checkpoint(tmp_path) -> str:
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': _Payload()}, path)
    return path


def test_every_mmengine_scheme_is_safe():
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmtpspike.utils.checkpoint import SAFE_LOADERS
    safe = set(SAFE_LOADERS.values())
    assert CheckpointLoader._schemes, 'mmengine registered no scheme'
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader in safe, f'{prefix!r} loads with {loader.__name__}'


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """Serve ``tmp_path / 'www'`` over HTTP on loopback; torch hub's cache
    goes to ``tmp_path / 'hub'``."""
    import functools
    import http.server
    import threading
    root = tmp_path / 'www'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_http_and_torchvision_schemes_load_safely(tmp_path, http_root,
                                                  monkeypatch):
    import shutil

    from mmengine.runner import CheckpointLoader
    from mmengine.runner import checkpoint as mm_checkpoint
    root, url = http_root
    shutil.copy(_runner_checkpoint(tmp_path), root / 'runner.pth')
    shutil.copy(_evil_checkpoint(tmp_path), root / 'evil.pth')
    checkpoint = CheckpointLoader.load_checkpoint(f'{url}/runner.pth')
    assert checkpoint['meta']['iter'] == 2
    with pytest.raises(UnsafeCheckpointError, match='posix.getcwd'):
        CheckpointLoader.load_checkpoint(f'{url}/evil.pth')
    monkeypatch.setattr(mm_checkpoint, 'get_torchvision_models',
                        lambda: {'evilnet': f'{url}/evil.pth'})
    with pytest.raises(UnsafeCheckpointError, match='posix.getcwd'):
        CheckpointLoader.load_checkpoint('torchvision://evilnet')


def test_openmmlab_scheme_with_local_file_loads_safely(tmp_path, monkeypatch):
    from mmengine.runner import CheckpointLoader
    from mmengine.runner import checkpoint as mm_checkpoint
    monkeypatch.setattr(mm_checkpoint, '_get_mmengine_home',
                        lambda: str(tmp_path))
    monkeypatch.setattr(mm_checkpoint, 'get_external_models',
                        lambda: {'evil': 'evil.pth'})
    _evil_checkpoint(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match='posix.getcwd'):
        CheckpointLoader.load_checkpoint('open-mmlab://evil')


def _rename_pickled_module(path: str, old: bytes, new: bytes) -> None:
    """Rewrite module names inside a torch zip checkpoint's pickle."""
    import zipfile
    with zipfile.ZipFile(path) as source:
        entries = {info.filename: source.read(info)
                   for info in source.infolist()}
    pickle_name = next(name for name in entries if name.endswith('data.pkl'))
    assert old in entries[pickle_name]
    entries[pickle_name] = entries[pickle_name].replace(old, new)
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as target:
        for name, data in entries.items():
            target.writestr(name, data)


def test_numpy2_pickles_are_accepted(tmp_path):
    import numpy as np
    path = str(tmp_path / 'np2.pth')
    torch.save({'meta': {'array': np.arange(3.), 'scalar': np.float64(2.5)}},
               path)
    _rename_pickled_module(path, b'numpy.core.multiarray',
                           b'numpy._core.multiarray')
    checkpoint = safe_load_checkpoint(path)
    assert checkpoint['meta']['array'].tolist() == [0., 1., 2.]
    assert checkpoint['meta']['scalar'] == 2.5


def test_allow_list_unpickler_of_older_torch(tmp_path, monkeypatch):
    """The path taken on torch < 2.6 (no extensible weights_only) accepts
    runner checkpoints and refuses the same files."""
    from mmtpspike.utils import checkpoint as safe
    monkeypatch.setattr(safe, 'torch_has_extensible_weights_only',
                        lambda: False)
    runner_ckpt = safe.safe_load_checkpoint(_runner_checkpoint(tmp_path))
    assert runner_ckpt['meta']['iter'] == 2
    assert 'message_hub' in runner_ckpt
    with pytest.raises(UnsafeCheckpointError, match='posix.getcwd'):
        safe.safe_load_checkpoint(_evil_checkpoint(tmp_path))


def test_multistep_scheduler_milestones_load(tmp_path, monkeypatch):
    """mmengine's MultiStepParamScheduler saves its milestones as a
    ``collections.Counter`` (every detection checkpoint with the 1x
    schedule): both loading paths accept it."""
    import collections
    from mmtpspike.utils import checkpoint as safe
    path = str(tmp_path / 'sched.pth')
    milestones = collections.Counter({8: 1, 11: 1})
    torch.save({'param_schedulers': [{'milestones': milestones}]}, path)
    assert safe.safe_load_checkpoint(path)['param_schedulers'][0][
        'milestones'] == milestones
    monkeypatch.setattr(safe, 'torch_has_extensible_weights_only',
                        lambda: False)
    assert safe.safe_load_checkpoint(path)['param_schedulers'][0][
        'milestones'] == milestones
