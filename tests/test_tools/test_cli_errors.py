"""tools/train.py and tools/test.py: bad input gives one clear line.

Argument and set-up errors, and the two-step trainings that meet an
unreadable image, run the tools' ``main(argv)`` in this process
(``call_main``: the same exit status and output as the command line, without
a subprocess's seconds of imports); test_command_line_error_is_one_line runs
each script itself once."""
import os
import subprocess
import sys

import pytest

from tool_runner import call_main

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
    """``python *args`` in a subprocess, as a user runs it."""
    env = dict(os.environ)
    env.pop('MMTPSPIKE_DEBUG', None)
    return subprocess.run([sys.executable, *args], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_one_clear_line(result, *fragments):
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in result.stderr
    assert lines and lines[-1].startswith('error: '), result.stderr
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


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_command_line_error_is_one_line(repo_root, tmp_path, tool):
    """The script itself, in a subprocess: the error ends the process
    with status 1 and one line, as main() does in process below."""
    args = [tool, str(tmp_path / 'no.py')] + (
        [str(tmp_path / 'none.pth')] if tool.endswith('test.py') else [])
    result = run_tool(repo_root, *args)
    assert_one_clear_line(result, 'config file not found', 'no.py')


def test_missing_config(tmp_path):
    result = call_main('tools/train.py', tmp_path / 'no.py')
    assert_one_clear_line(result, 'config file not found', 'no.py')


def test_unknown_module_type(tmp_path):
    result = call_main('tools/train.py',
                       write_cfg(tmp_path, model_type='MaskRCNNN'),
                       '--work-dir', tmp_path / 'work')
    assert_one_clear_line(result, "unknown module type 'MaskRCNNN'",
                          'custom_imports')


def test_missing_data_root(tmp_path):
    missing = tmp_path / 'nowhere' / 'coco'
    result = call_main('tools/train.py', write_cfg(tmp_path, data_root=missing))
    assert_one_clear_line(result, str(missing),
                          'train_dataloader.dataset.data_root')


def test_missing_annotation_file(tmp_path):
    cfg = write_cfg(tmp_path)
    os.remove(tmp_path / 'data' / 'annotations' / 'train.json')
    result = call_main('tools/train.py', cfg)
    assert_one_clear_line(result, 'annotation file', 'train.json')


def test_missing_checkpoint_for_test(tmp_path):
    result = call_main('tools/test.py', write_cfg(tmp_path),
                       tmp_path / 'none.pth')
    assert_one_clear_line(result, 'checkpoint not found', 'none.pth')


def test_bad_resume_path(tmp_path):
    result = call_main('tools/train.py', write_cfg(tmp_path), '--resume',
                       tmp_path / 'gone.pth')
    assert_one_clear_line(result, '--resume checkpoint not found')


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_help(tool):
    result = call_main(tool, '--help')
    assert result.returncode == 0
    assert result.stdout.startswith(f'usage: {os.path.basename(tool)} ')
    for flag in ('--work-dir', '--cfg-options', '--launcher'):
        assert flag in result.stdout


def test_amp_without_cuda(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    result = call_main('tools/train.py', write_cfg(tmp_path), '--amp')
    assert_one_clear_line(result, '--amp needs a CUDA device')


def test_launcher_without_its_environment(tmp_path, monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    result = call_main('tools/train.py', write_cfg(tmp_path), '--launcher',
                       'pytorch')
    assert_one_clear_line(result, '--launcher pytorch needs RANK',
                          'tools/dist_train.sh')


def test_explicit_nccl_without_cuda(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    result = call_main('tools/train.py', write_cfg(tmp_path), '--launcher',
                       'pytorch', '--cfg-options',
                       'env_cfg.dist_cfg.backend=nccl')
    assert_one_clear_line(result, "backend='nccl' needs CUDA GPUs",
                          'backend=gloo')


def run_script(repo_root, *args, **env):
    return subprocess.run(['bash', *args], cwd=repo_root, capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, **env))


@pytest.mark.parametrize('args, message', [
    (['tools/dist_train.sh', 'cfg.py'], 'usage: bash tools/dist_train.sh'),
    (['tools/dist_test.sh', 'cfg.py', 'ckpt.pth'],
     'usage: bash tools/dist_test.sh'),
    (['tools/dist_train.sh', 'cfg.py', 'two'],
     "number of processes must be a positive integer, got 'two'"),
])
def test_dist_scripts_check_their_arguments(repo_root, args, message):
    result = run_script(repo_root, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_dist_script_names_an_interpreter_without_torch(repo_root, tmp_path):
    result = run_script(repo_root, 'tools/dist_train.sh', 'cfg.py', '2',
                        PYTHON=str(tmp_path / 'no-python'))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: '{tmp_path / 'no-python'}' cannot import torch")


SEG_DEMO = 'configs/seg/sdtv3_tp_ade20k_demo.py'
NO_VAL = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


@pytest.fixture
def corrupt_mini_ade(repo_root, tmp_path):
    """A copy of the mini ADE set whose first training image is corrupt."""
    import shutil
    data = tmp_path / 'mini_ade'
    shutil.copytree(os.path.join(repo_root, 'data', 'mini_ade_textured'), data)
    corrupt = data / 'images' / 'training' / 'ADE_train_00000001.jpg'
    corrupt.write_bytes(b'\xff\xd8\xff\xe0 cut off here')
    return data, corrupt


def train_on(data, *options, indices):
    """Train the seg demo (in process) for 2 steps of 2 images on the first
    ``indices`` images of ``data``."""
    return call_main('tools/train.py', SEG_DEMO, '--work-dir',
                     data.parent / 'work', *options, '--cfg-options',
                     f'train_dataloader.dataset.data_root={data}',
                     f'train_dataloader.dataset.indices={indices}',
                     'train_dataloader.batch_size=2', 'train_cfg.max_iters=2',
                     *NO_VAL)


def test_unreadable_training_image(corrupt_mini_ade):
    data, corrupt = corrupt_mini_ade
    # the first step reads both images, the corrupt one included
    result = train_on(data, indices=2)
    assert_one_clear_line(
        result, f'cannot read image {corrupt} (not a decodable image)',
        '--skip-unreadable-images')


def test_skip_unreadable_training_images(corrupt_mini_ade):
    data, corrupt = corrupt_mini_ade
    # two steps read all four images once
    result = train_on(data, '--skip-unreadable-images', indices=4)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f'skipped unreadable image {corrupt} (not a decodable image); '
            f'1 unreadable image(s) skipped so far') in result.stdout
    assert os.path.isfile(data.parent / 'work' / 'iter_2.pth')
