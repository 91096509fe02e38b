"""Registries of mmtpspike and helpers that register into mmdet and mmseg.

Models and hooks are registered into the ``MODELS`` / ``HOOKS`` registries of
each task package that is installed (mmdet, mmseg, or both), so a config with
``default_scope='mmdet'`` or ``default_scope='mmseg'`` and
``custom_imports=dict(imports=['mmtpspike'])`` can build them, and into
mmengine's root registries, which every other OpenMMLab scope searches last.
A detection-only or segmentation-only environment works; with neither task
package installed, importing mmtpspike is an ``ImportError`` that names the
fix. Stock modules of those registries are left untouched: a name that
already exists there is an error, never an override.

Token scorers and restorers live in registries of their own (scope
``mmtpspike``); the backbone builds them, whatever the config's scope.
"""
import importlib
import importlib.util
from typing import List, Tuple

from mmengine.registry import HOOKS as ROOT_HOOKS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import Registry

TASK_PACKAGES = ('mmdet', 'mmseg')

TOKEN_SCORERS = Registry(
    'token scorer', scope='mmtpspike', locations=['mmtpspike.models.pruning'])
TOKEN_RESTORERS = Registry(
    'token restorer', scope='mmtpspike', locations=['mmtpspike.models.pruning'])


def installed_task_packages() -> Tuple[str, ...]:
    """The task packages of :data:`TASK_PACKAGES` that are installed.

    Raises:
        ImportError: Neither mmdet nor mmseg is installed.
    """
    found = tuple(package for package in TASK_PACKAGES
                  if importlib.util.find_spec(package) is not None)
    if not found:
        raise ImportError(
            'mmtpspike registers its models into mmdet and / or mmseg, and '
            'neither is installed: pip install "mmdet>=3.0" for detection or '
            '"mmseg>=1.0" (package mmsegmentation) for segmentation')
    return found


INSTALLED_TASK_PACKAGES = installed_task_packages()


def _registries(name: str, root: Registry) -> List[Registry]:
    """Registry ``name`` of every installed task package, then ``root``."""
    return [
        getattr(importlib.import_module(f'{package}.registry'), name)
        for package in INSTALLED_TASK_PACKAGES
    ] + [root]


def register_model(cls):
    """Register a model class into the installed task packages' and the
    root ``MODELS``."""
    for registry in _registries('MODELS', ROOT_MODELS):
        registry.register_module(module=cls)
    return cls


def register_hook(cls):
    """Register a hook class into the installed task packages' and the
    root ``HOOKS``."""
    for registry in _registries('HOOKS', ROOT_HOOKS):
        registry.register_module(module=cls)
    return cls
