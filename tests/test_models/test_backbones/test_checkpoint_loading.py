"""The checkpoint modules stand on their own: key tables and converters
never import their backbone (the backbone imports them, not the other way
round), so there is no import circle to dodge with local imports."""
import ast
import os.path as osp

import pytest

import mmtpspike.models.backbones as backbones
from mmtpspike.models.backbones.checkpoint_loading import arch_hint

BACKBONES = ('sdtv3', 'sdtv1', 'qkformer', 'spikformer')


def imported_modules(path):
    """Every module a file imports, relative ones with their dots, at any
    depth (local imports inside functions included)."""
    tree = ast.parse(open(path).read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add('.' * node.level + (node.module or ''))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize('backbone', BACKBONES)
def test_checkpoint_module_does_not_import_its_backbone(backbone):
    folder = osp.dirname(backbones.__file__)
    imports = imported_modules(osp.join(folder, f'{backbone}_checkpoint.py'))
    assert not imports & {f'.{backbone}',
                          f'mmtpspike.models.backbones.{backbone}'}


@pytest.mark.parametrize('backbone', BACKBONES)
def test_backbone_imports_its_checkpoint_module_at_the_top(backbone):
    folder = osp.dirname(backbones.__file__)
    tree = ast.parse(open(osp.join(folder, f'{backbone}.py')).read())
    top = {node.module for node in tree.body
           if isinstance(node, ast.ImportFrom)}
    local = {node.module for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom)} - top
    assert f'{backbone}_checkpoint' in top and not local


def test_arch_hint_names_the_first_fitting_arch():
    settings = {'s': [32, 64], 'l': [64, 128]}
    assert arch_hint(settings, lambda dims: dims[0] == 64,
                     'stem width 32') == \
        " (the checkpoint looks like arch='l', stem width 32)"
    assert arch_hint(settings, lambda dims: False, 'stem width 20') == \
        ' (checkpoint stem width 20)'
