"""mmtpspike.utils.config: loading configs with clear errors."""
import pytest

from mmtpspike.utils.config import SetupError, load_config


def test_load_config_applies_options(repo_root):
    cfg = load_config(f'{repo_root}/configs/det/sdtv3_tp_coco_demo.py',
                      {'model.backbone.pruning.keep_ratios': 0.56})
    assert cfg.model.backbone.pruning.keep_ratios == 0.56
    assert cfg.default_scope == 'mmdet'


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(SetupError, match='config file not found: .*nope.py'):
        load_config(str(tmp_path / 'nope.py'))


def test_unsupported_scope_names_the_supported_ones(tmp_path):
    path = tmp_path / 'cls.py'
    path.write_text("default_scope = 'mmpretrain'\n")
    with pytest.raises(SetupError,
                       match="default_scope='mmpretrain'.*'mmdet', 'mmseg'"):
        load_config(str(path))
