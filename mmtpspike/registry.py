"""Registries of mmtpspike and helpers that register into mmdet and mmseg.

Models and hooks are registered into the ``MODELS`` / ``HOOKS`` registries of
**both** mmdet and mmseg, so a config with ``default_scope='mmdet'`` or
``default_scope='mmseg'`` and ``custom_imports=dict(imports=['mmtpspike'])``
can build them, and into mmengine's root registries, which every other
OpenMMLab scope searches last. Stock modules of those registries are left
untouched: a name that already exists there is an error, never an override.

Token scorers and restorers live in registries of their own (scope
``mmtpspike``); the backbone builds them, whatever the config's scope.
"""
from mmdet.registry import HOOKS as MMDET_HOOKS
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import HOOKS as ROOT_HOOKS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import Registry
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import MODELS as MMSEG_MODELS

TOKEN_SCORERS = Registry(
    'token scorer', scope='mmtpspike', locations=['mmtpspike.models.pruning'])
TOKEN_RESTORERS = Registry(
    'token restorer', scope='mmtpspike', locations=['mmtpspike.models.pruning'])


def register_model(cls):
    """Register a model class into the mmdet, mmseg and root ``MODELS``."""
    for registry in (MMDET_MODELS, MMSEG_MODELS, ROOT_MODELS):
        registry.register_module(module=cls)
    return cls


def register_hook(cls):
    """Register a hook class into the mmdet, mmseg and root ``HOOKS``."""
    for registry in (MMDET_HOOKS, MMSEG_HOOKS, ROOT_HOOKS):
        registry.register_module(module=cls)
    return cls
