"""tools/train.py and tools/test.py: bad input gives one clear line."""
import os
import subprocess
import sys

import pytest

MINIMAL_CFG = """
default_scope = 'mmdet'
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)
model = dict(type='{model_type}', backbone=dict(type='SDTV3', arch='t'))
train_dataloader = dict(
    batch_size=1,
    dataset=dict(type='CocoDataset', data_root='{data_root}',
                 ann_file='annotations/train.json'))
train_cfg = dict(max_epochs=1)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
"""


def run_tool(repo_root, *args):
    env = dict(os.environ)
    env.pop('MMTPSPIKE_DEBUG', None)
    return subprocess.run([sys.executable, *args], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_clear_line(result, *fragments):
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in result.stderr
    assert lines[-1].startswith('error: ')
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def write_cfg(tmp_path, model_type='MaskRCNN', data_root=None):
    if data_root is None:
        data_root = tmp_path / 'data'
        (data_root / 'annotations').mkdir(parents=True)
        (data_root / 'annotations' / 'train.json').write_text('{}')
    path = tmp_path / 'cfg.py'
    path.write_text(MINIMAL_CFG.format(model_type=model_type,
                                       data_root=str(data_root)))
    return str(path)


def test_missing_config(repo_root, tmp_path):
    result = run_tool(repo_root, 'tools/train.py', str(tmp_path / 'no.py'))
    assert_one_clear_line(result, 'config file not found', 'no.py')


def test_unknown_module_type(repo_root, tmp_path):
    result = run_tool(repo_root, 'tools/train.py',
                      write_cfg(tmp_path, model_type='MaskRCNNN'),
                      '--work-dir', str(tmp_path / 'work'))
    assert_one_clear_line(result, "unknown module type 'MaskRCNNN'",
                          'custom_imports')


def test_missing_data_root(repo_root, tmp_path):
    missing = tmp_path / 'nowhere' / 'coco'
    result = run_tool(repo_root, 'tools/train.py',
                      write_cfg(tmp_path, data_root=missing))
    assert_one_clear_line(result, str(missing),
                          'train_dataloader.dataset.data_root')


def test_missing_annotation_file(repo_root, tmp_path):
    cfg = write_cfg(tmp_path)
    os.remove(tmp_path / 'data' / 'annotations' / 'train.json')
    result = run_tool(repo_root, 'tools/train.py', cfg)
    assert_one_clear_line(result, 'annotation file', 'train.json')


def test_missing_checkpoint_for_test(repo_root, tmp_path):
    result = run_tool(repo_root, 'tools/test.py', write_cfg(tmp_path),
                      str(tmp_path / 'none.pth'))
    assert_one_clear_line(result, 'checkpoint not found', 'none.pth')


def test_bad_resume_path(repo_root, tmp_path):
    result = run_tool(repo_root, 'tools/train.py', write_cfg(tmp_path),
                      '--resume', str(tmp_path / 'gone.pth'))
    assert_one_clear_line(result, '--resume checkpoint not found')


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_help(repo_root, tool):
    result = run_tool(repo_root, tool, '--help')
    assert result.returncode == 0
    for flag in ('--work-dir', '--cfg-options', '--launcher'):
        assert flag in result.stdout


def test_amp_without_cuda(repo_root, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    result = run_tool(repo_root, 'tools/train.py', write_cfg(tmp_path),
                      '--amp')
    assert_one_clear_line(result, '--amp needs a CUDA device')
