"""Safe loading of checkpoints: tensors plus an explicit allow-list.

mmengine 0.10 runner checkpoints legitimately hold a few objects besides
tensors (numpy arrays and scalars in the message hub, its ``HistoryBuffer``
objects, ``argparse.Namespace`` in timm/DeiT-style ImageNet checkpoints).
Instead of unpickling anything, those types are allow-listed for one load at
a time, and a checkpoint holding any other pickled object is refused with
:class:`UnsafeCheckpointError` naming the offending type.

How safe a load can be depends on torch:

* torch >= 2.6: ``torch.load(weights_only=True)`` inside
  ``torch.serialization.safe_globals(allow-list)``.
* older torch (e.g. 2.1): ``weights_only`` cannot be extended there, so the
  load runs through :class:`AllowListUnpickler`, a restricted unpickler that
  resolves only torch's own tensor-rebuild globals (the list torch's
  ``weights_only`` mode uses) plus the same allow-list. It refuses the same
  files; the difference is that the check is ours, not torch's.

Importing :mod:`mmtpspike` re-registers every scheme of mmengine's
``CheckpointLoader`` (local paths, ``http(s)://``, ``torchvision://``,
``open-mmlab://``, ``mmcls://``, ``s3://``, ``pavi://``) with loaders that
fetch the file as mmengine does and then load it safely, so ``load_from``,
``resume`` and ``init_cfg=dict(type='Pretrained', ...)`` all go through
:func:`safe_load_checkpoint`, whatever the scheme.
"""
import argparse
import collections
import io
import logging
import os
import os.path as osp
import pickle
import re
import types
import warnings
from tempfile import TemporaryDirectory
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version

#: torch from which ``weights_only`` accepts an extended allow-list
SAFE_GLOBALS_TORCH = '2.6.0'
CheckpointSource = Union[str, io.BytesIO]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allow-list."""


def _history_buffer_method(owner, name: str):
    """Stand-in for ``getattr`` while unpickling.

    ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``; a general ``getattr`` would let a
    crafted file reach any attribute, so only public methods of
    ``HistoryBuffer`` are answered.
    """
    if owner is HistoryBuffer and not name.startswith('_') and callable(
            getattr(HistoryBuffer, name, None)):
        return getattr(owner, name)
    raise UnsafeCheckpointError(
        f'refusing getattr({owner!r}, {name!r}) inside a checkpoint')


def _numpy_multiarray() -> types.ModuleType:
    """numpy's ``multiarray`` module (``numpy._core`` in numpy 2)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 1.26 has no numpy._core alias
        from numpy.core import multiarray
    return multiarray


def allowed_globals() -> Dict[str, Any]:
    """Every non-tensor global allowed inside a checkpoint, by the
    ``module.name`` a pickle refers to it with.

    numpy functions are listed under their numpy-1 (``numpy.core``) and
    numpy-2 (``numpy._core``) names, so pickles written by either numpy load
    with either.
    """
    multiarray = _numpy_multiarray()
    allowed = {}
    for package in ('numpy.core', 'numpy._core'):
        for name in ('_reconstruct', 'scalar'):
            allowed[f'{package}.multiarray.{name}'] = getattr(multiarray, name)
    allowed['numpy.ndarray'] = np.ndarray
    allowed['numpy.dtype'] = np.dtype
    for name in dir(np.dtypes):
        if name.endswith('DType'):
            allowed[f'numpy.dtypes.{name}'] = getattr(np.dtypes, name)
    allowed['mmengine.logging.history_buffer.HistoryBuffer'] = HistoryBuffer
    # MultiStepParamScheduler keeps its milestones in a Counter (recent
    # torch allows it by default, the allow-list unpickler needs it)
    allowed['collections.Counter'] = collections.Counter
    allowed['argparse.Namespace'] = argparse.Namespace
    allowed['builtins.getattr'] = _history_buffer_method
    allowed['__builtin__.getattr'] = _history_buffer_method
    return allowed


def _safe_globals_entries() -> List[Tuple[Any, str]]:
    """:func:`allowed_globals` in the ``(object, name)`` form of
    ``torch.serialization.safe_globals``."""
    return [(obj, name) for name, obj in allowed_globals().items()]


def _torch_rebuild_globals() -> Dict[str, Any]:
    """The globals torch's own ``weights_only`` unpickler accepts (tensor and
    storage rebuild functions, dtypes, ``OrderedDict``, ...)."""
    from torch import _weights_only_unpickler
    return dict(_weights_only_unpickler._get_allowed_globals())


class AllowListUnpickler(pickle.Unpickler):
    """Unpickler resolving only allow-listed globals (older torch).

    ``torch.load(..., pickle_module=ALLOW_LIST_PICKLE)`` uses it through
    torch's wrapper, which resolves storage types itself.
    """

    def find_class(self, module: str, name: str):
        full_name = f'{module}.{name}'
        allowed = _allow_list_cache()
        if full_name in allowed:
            return allowed[full_name]
        raise UnsafeCheckpointError(f'Unsupported global: GLOBAL {full_name}')


_ALLOWED: Dict[str, Any] = {}


def _allow_list_cache() -> Dict[str, Any]:
    if not _ALLOWED:
        _ALLOWED.update(_torch_rebuild_globals())
        _ALLOWED['_codecs.encode'] = __import__('_codecs').encode
        _ALLOWED.update(allowed_globals())
    return _ALLOWED


ALLOW_LIST_PICKLE = types.ModuleType('mmtpspike_allow_list_pickle')
ALLOW_LIST_PICKLE.Unpickler = AllowListUnpickler
ALLOW_LIST_PICKLE.load = pickle.load
ALLOW_LIST_PICKLE.__doc__ = 'pickle module of torch.load for older torch'


def torch_has_extensible_weights_only() -> bool:
    """Whether this torch's ``weights_only`` mode takes an allow-list."""
    return digit_version(torch.__version__) >= digit_version(
        SAFE_GLOBALS_TORCH) and hasattr(torch.serialization, 'safe_globals')


_UNSAFE_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')
_announced = False


def _announce_own_unpickler() -> None:
    """Say once per process how checkpoints are checked on older torch."""
    global _announced
    if _announced:
        return
    _announced = True
    print_log(
        f'torch {torch.__version__} has no weights_only allow-list '
        f'(torch.serialization.safe_globals, torch >= {SAFE_GLOBALS_TORCH}): '
        'checkpoints load through mmtpspike\'s restricted unpickler, which '
        'accepts tensors and the same allow-list and refuses anything else',
        logger='current', level=logging.INFO)


def safe_load_checkpoint(source: CheckpointSource,
                         map_location: Optional[str] = 'cpu') -> dict:
    """Load tensors plus the allow-listed runner objects, nothing else.

    Args:
        source (str | BytesIO): local checkpoint path or file object.
        map_location (str, optional): As for :func:`torch.load`.

    Returns:
        dict: the checkpoint.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds a non-allow-listed object.
    """
    name = source if isinstance(source, str) else '<buffer>'
    if isinstance(source, str):
        source = osp.expanduser(source)
        if not osp.isfile(source):
            raise FileNotFoundError(f'checkpoint not found: {source}')
    try:
        if torch_has_extensible_weights_only():
            with torch.serialization.safe_globals(_safe_globals_entries()):
                return torch.load(source, map_location=map_location,
                                  weights_only=True)
        _announce_own_unpickler()
        return torch.load(source, map_location=map_location,
                          pickle_module=ALLOW_LIST_PICKLE, weights_only=False)
    except pickle.UnpicklingError as err:
        match = _UNSAFE_GLOBAL.search(str(err))
        offending = match.group(1) if match else 'unknown'
        raise UnsafeCheckpointError(
            f'refusing to load {name}: it contains a pickled object of '
            f'type {offending}, which is not a tensor nor an allow-listed '
            f'runner-checkpoint type. If you trust this file, re-save its '
            f'tensors only (torch.save(state_dict)) or load it explicitly '
            f'with torch.load(..., weights_only=False).') from None


def _download(url: str) -> str:
    """Download ``url`` into torch hub's checkpoint cache once; return the
    local path. A hash prefix in the file name (``name-<sha256 prefix>.pth``)
    is checked, as in ``torch.hub``."""
    model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    filename = osp.basename(urlparse(url).path)
    cached = osp.join(model_dir, filename)
    if not osp.exists(cached):
        match = torch.hub.HASH_REGEX.search(filename)
        torch.hub.download_url_to_file(
            url, cached, match.group(1) if match else None, progress=False)
    return cached


def load_from_http_safe(filename: str, map_location=None) -> dict:
    """``http(s)://``: rank 0 downloads first, then every rank loads."""
    rank, world_size = get_dist_info()
    if rank == 0:
        path = _download(filename)
    if world_size > 1:
        barrier()
        if rank > 0:
            path = _download(filename)
    return safe_load_checkpoint(path, map_location)


def load_from_local_safe(filename: str, map_location=None) -> dict:
    """Local paths."""
    return safe_load_checkpoint(filename, map_location)


def load_from_torchvision_safe(filename: str, map_location=None) -> dict:
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``)."""
    name = filename.split('://', 1)[1]
    url = mm_checkpoint.get_torchvision_models()[name]
    return load_from_http_safe(url, map_location)


def load_from_openmmlab_safe(filename: str, map_location=None) -> dict:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: a URL or a file under
    ``MMENGINE_HOME``, as listed by mmengine."""
    name = filename.split('://', 1)[1]
    name = mm_checkpoint.get_deprecated_model_names().get(name, name)
    url = mm_checkpoint.get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http_safe(url, map_location)
    return safe_load_checkpoint(
        osp.join(mm_checkpoint._get_mmengine_home(), url), map_location)


def load_from_mmcls_safe(filename: str, map_location=None) -> dict:
    """``mmcls://NAME``: mmcls checkpoints, keys converted by mmengine."""
    url = mm_checkpoint.get_mmcls_models()[filename[len('mmcls://'):]]
    return mm_checkpoint._process_mmcls_checkpoint(
        load_from_http_safe(url, map_location))


def load_from_ceph_safe(filename: str, map_location=None) -> dict:
    """``s3://`` / ``petrel://`` through mmengine's file backend."""
    from mmengine.fileio import get_file_backend
    backend = get_file_backend(filename, backend_args={'backend': 'petrel'})
    with io.BytesIO(backend.get(filename)) as buffer:
        return safe_load_checkpoint(buffer, map_location)


def load_from_pavi_safe(filename: str, map_location=None) -> dict:
    """``pavi://``: downloaded to a temporary folder, then loaded."""
    try:
        from pavi import modelcloud
    except ImportError as err:
        raise ImportError('install pavi to load pavi:// checkpoints') from err
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        path = osp.join(tmp_dir, model.name)
        model.download(path)
        return safe_load_checkpoint(path, map_location)


#: mmengine scheme prefixes -> safe loader
SAFE_LOADERS: Dict[Tuple[str, ...], Callable] = {
    ('', ): load_from_local_safe,
    ('http://', 'https://'): load_from_http_safe,
    ('modelzoo://', 'torchvision://'): load_from_torchvision_safe,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab_safe,
    ('mmcls://', ): load_from_mmcls_safe,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph_safe,
    ('pavi://', ): load_from_pavi_safe,
}


def register_safe_loaders() -> None:
    """Make every mmengine checkpoint scheme load through
    :func:`safe_load_checkpoint`.

    A scheme registered by another package (or a newer mmengine) is left
    as it is, with a warning naming it.
    """
    covered = {prefix for prefixes in SAFE_LOADERS for prefix in prefixes}
    unknown = set(CheckpointLoader._schemes) - covered
    if unknown:
        warnings.warn(
            f'checkpoint scheme(s) {sorted(unknown)} are not loaded through '
            f"mmtpspike's safe loader (registered by another package)")
    for prefixes, loader in SAFE_LOADERS.items():
        CheckpointLoader.register_scheme(
            prefixes=list(prefixes), loader=loader, force=True)
