"""Every SDT-V3 det / seg config takes its backbone and pruning block from the
shared bases in configs/_base_/."""
import glob
import os

import pytest
from mmengine.config import Config

CONFIG_DIR = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
CONFIGS = sorted(
    glob.glob(os.path.join(CONFIG_DIR, 'det', 'sdtv3_*.py')) +
    glob.glob(os.path.join(CONFIG_DIR, 'seg', 'sdtv3_*.py')))
# what the M and demo variants override on top of the shared L backbone
VARIANT_KEYS = {'embed_dims', 'drop_path_rate', 'init_cfg'}
# retention of the TP configs: the paper's settings for each task
PRUNING_BASE = {'det': 'tp_78.py', 'seg': 'tp_56.py'}


def base(*parts):
    return Config.fromfile(os.path.join(CONFIG_DIR, '_base_', *parts))


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_backbone_and_pruning_come_from_the_bases(path):
    shared = base('models', 'sdtv3_l.py')
    backbone = Config.fromfile(path).model.backbone.to_dict()
    pruning = backbone.pop('pruning', None)
    differing = {
        key
        for key in set(backbone) | set(shared.sdtv3_l)
        if backbone.get(key) != shared.sdtv3_l.get(key)
    }
    assert differing <= VARIANT_KEYS
    name = os.path.basename(path)
    if name.startswith('sdtv3_tp_fastest_'):
        expected = base('pruning', 'tp_fastest_56.py').pruning
        if name.endswith('_demo.py'):  # smaller images, smaller tiles
            expected.conv_tile = 4
        assert pruning == expected
    elif name.startswith('sdtv3_tp_fast_'):
        assert pruning == base('pruning', 'tp_fast_56.py').pruning
    elif os.path.basename(path).startswith('sdtv3_tp_'):
        task = os.path.basename(os.path.dirname(path))
        assert pruning == base('pruning', PRUNING_BASE[task]).pruning
    else:
        assert pruning is None


def test_pruning_bases_differ_only_in_keep_ratio():
    tp_78 = base('pruning', 'tp_78.py').pruning.to_dict()
    tp_56 = base('pruning', 'tp_56.py').pruning.to_dict()
    assert tp_78.pop('keep_ratios') == 0.78
    assert tp_56.pop('keep_ratios') == 0.56
    assert tp_78 == tp_56


def test_fast_pruning_base_is_tp_56_with_the_mixer_skipped():
    fast = base('pruning', 'tp_fast_56.py').pruning.to_dict()
    assert fast.pop('skip_mixer') is True
    assert fast == base('pruning', 'tp_56.py').pruning.to_dict()


def test_fastest_pruning_base_is_the_fast_one_with_conv_tiles():
    fastest = base('pruning', 'tp_fastest_56.py').pruning.to_dict()
    assert fastest.pop('conv_keep_ratios') == 0.56
    assert fastest.pop('conv_tile') == 8
    assert fastest == base('pruning', 'tp_fast_56.py').pruning.to_dict()


ALL_CONFIGS = sorted(glob.glob(os.path.join(CONFIG_DIR, 'det', '*.py')) +
                     glob.glob(os.path.join(CONFIG_DIR, 'seg', '*.py')))


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=os.path.basename)
def test_every_task_config_is_seeded(path):
    """Unseeded demo runs spread over 0.145-0.27 bbox mAP, more than any
    difference in the pruning tables."""
    assert Config.fromfile(path).get('randomness', {}).get('seed') == 0
