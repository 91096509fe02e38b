"""Safe loading of checkpoints under ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` only unpickles tensors and plain containers by
default. mmengine 0.10.7 runner checkpoints legitimately hold a few more
objects (numpy arrays and scalars in the message hub, its ``HistoryBuffer``
objects, ``argparse.Namespace`` in timm/DeiT-style ImageNet checkpoints).
Instead of switching the safety off, these types are allow-listed for the
duration of one load, and a checkpoint holding any other pickled object is
refused with :class:`UnsafeCheckpointError` naming the offending type.

Importing :mod:`mmtpspike` registers :func:`load_from_local_safe` as
mmengine's loader for local paths, so ``load_from``, ``resume`` and
``init_cfg=dict(type='Pretrained', ...)`` all go through it.
"""
import argparse
import os.path as osp
import pickle
import re
from typing import Callable, List, Optional

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allow-list."""


def _numpy_globals() -> List[Callable]:
    """numpy objects that mmengine runner checkpoints contain."""
    from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [getattr(np.dtypes, name) for name in dir(np.dtypes)
                     if name.endswith('DType')]
    return [_reconstruct, scalar, np.ndarray, np.dtype] + dtype_classes


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


def runner_checkpoint_globals() -> List[Callable]:
    """Every non-tensor type allowed inside a checkpoint."""
    return _numpy_globals() + [
        HistoryBuffer, argparse.Namespace,
        (_history_buffer_method, '__builtin__.getattr'),
        (_history_buffer_method, 'builtins.getattr')
    ]


_UNSAFE_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')


def safe_load_checkpoint(filename: str,
                         map_location: Optional[str] = 'cpu') -> dict:
    """``torch.load`` with ``weights_only=True`` and the runner allow-list.

    Args:
        filename (str): Local checkpoint path.
        map_location (str, optional): As for :func:`torch.load`.

    Returns:
        dict: the checkpoint.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds a non-allow-listed object.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    try:
        with torch.serialization.safe_globals(runner_checkpoint_globals()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        match = _UNSAFE_GLOBAL.search(str(err))
        offending = match.group(1) if match else 'unknown'
        raise UnsafeCheckpointError(
            f'refusing to load {filename}: it contains a pickled object of '
            f'type {offending}, which is not a tensor nor an allow-listed '
            f'runner-checkpoint type. If you trust this file, re-save its '
            f'tensors only (torch.save(state_dict)) or load it explicitly '
            f'with torch.load(..., weights_only=False).') from None


def load_from_local_safe(filename: str, map_location=None) -> dict:
    """mmengine ``CheckpointLoader`` backend for local paths."""
    return safe_load_checkpoint(filename, map_location)


def register_safe_local_loader() -> None:
    """Make mmengine load local files with :func:`safe_load_checkpoint`."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safe, force=True)
