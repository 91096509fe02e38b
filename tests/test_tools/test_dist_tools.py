"""tools/dist_train.sh and tools/dist_test.sh on CPU: torchrun with gloo.

Two processes on one node, two single-process "nodes" on localhost, SyncBN
in the backbone and neck, an interrupted and resumed run, and evaluation
with two processes against tools/test.py. Every process gets one thread
(``OMP_NUM_THREADS=1``: torchrun sets it for several processes per node,
the 2-node and single-process runs here get it explicitly), so single- and
multi-process results can be compared exactly.
"""
import os
import os.path as osp
import pickle
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from active_network import activate
from tool_runner import REPO_ROOT

# torchrun launches of minutes: the slow tier (-m slow or -m dist)
pytestmark = [pytest.mark.dist, pytest.mark.slow]

DET = 'configs/det/sdtv3_tp_coco_demo.py'
SEG = 'configs/seg/sdtv3_tp_ade20k_demo.py'
# 8 training images, 2 per process and step: 2 iterations per epoch
DET_TWO_ITERS = [
    'train_dataloader.dataset.indices=8', 'train_dataloader.batch_size=2',
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=2',
    'default_hooks.checkpoint.interval=1'
]
SEG_ITERS = 6
# no dropout: mmengine checkpoints do not hold RNG states, so dropout masks
# after a resume would differ from those of an uninterrupted run
SEG_RESUMABLE = [
    f'train_cfg.max_iters={SEG_ITERS}', 'train_cfg.val_interval=100',
    'train_dataloader.batch_size=2', 'default_hooks.checkpoint.interval=2',
    'default_hooks.checkpoint.max_keep_ckpts=1',
    'default_hooks.logger.interval=1', 'model.decode_head.dropout_ratio=0.0'
]
SYNC_BN = [
    'model.backbone.norm_cfg.type=SyncBN', 'model.neck.norm_cfg.type=SyncBN'
]
SEED = ['randomness.seed=0']
ONE_IMAGE_PER_STEP = ['test_dataloader.batch_size=1']


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool_env(**extra) -> dict:
    """Environment of a tool run: this interpreter, one thread, tests/ on
    ``PYTHONPATH`` (for the BN probe hook)."""
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [osp.join(REPO_ROOT, 'tests'),
                      env.get('PYTHONPATH')]))
    env.pop('MMTPSPIKE_DEBUG', None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


def check(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def run(*command, env=None, timeout=600) -> str:
    """Run a tool (``bash script ...`` or ``python tool ...``) to success."""
    command = [str(c) for c in command]
    if command[0].endswith('.py'):
        command = [sys.executable] + command
    else:
        command = ['bash'] + command
    return check(
        subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=timeout,
                       env=env or tool_env(PORT=free_port())))


def summary_metrics(output: str) -> dict:
    """Metrics of the ``(test)`` summary line, without timings."""
    line = [ln for ln in output.splitlines() if '(test) [' in ln][-1]
    return {
        key: float(value)
        for key, value in re.findall(r'(\S+): (-?\d+\.\d+)', line)
        if not key.endswith('time')
    }


def active_checkpoint(config: str, checkpoint: str, out: str,
                      cfg_options=()) -> str:
    """Save ``checkpoint`` with backbone BN statistics set so that every
    stage fires (a few training steps leave it almost silent)."""
    from mmtpspike.analysis.model_io import (build_model, default_images,
                                             read_image, to_input)
    model, cfg = build_model(
        osp.join(REPO_ROOT, config), checkpoint,
        dict(option.split('=', 1) for option in cfg_options))
    images = [read_image(osp.join(REPO_ROOT, path))
              for path in default_images(cfg, 2)]
    activate(model.backbone, to_input(images, (128, 192), model))
    torch.save(dict(state_dict=model.state_dict()), out)
    return out


# -- detection: 2 processes, training and evaluation -------------------------
@pytest.fixture(scope='module')
def det_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('det_dist')
    output = run('tools/dist_train.sh', DET, 2, '--work-dir', work_dir,
                 '--cfg-options', *DET_TWO_ITERS)
    return work_dir, output


def test_two_process_detector_training(det_run):
    work_dir, output = det_run
    assert f'[dist] {sys.executable} -m torch.distributed.run' in output
    assert 'distributed on CPU: backend gloo, 2 processes' in output
    assert 'Distributed training: True' in output
    assert 'Epoch(train) [1][2/2]' in output
    checkpoint = torch.load(work_dir / 'epoch_1.pth', weights_only=False)
    assert checkpoint['meta']['iter'] == 2
    assert all(torch.isfinite(v).all()
               for v in checkpoint['state_dict'].values())


def compare_det_predictions(single: str, multi: str) -> None:
    with open(single, 'rb') as f, open(multi, 'rb') as g:
        expected, actual = pickle.load(f), pickle.load(g)
    assert sorted(r['img_id'] for r in actual) == sorted(
        r['img_id'] for r in expected)
    actual = {r['img_id']: r['pred_instances'] for r in actual}
    scores = []
    for result in expected:
        want, got = result['pred_instances'], actual[result['img_id']]
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(got[key], want[key]), (result['img_id'], key)
        assert got['masks'] == want['masks']
        scores.append(want['scores'])
    scores = torch.cat(scores)
    assert len(scores) > 0 and scores.std() > 0


def test_dist_test_matches_single_process_det(det_run, tmp_path):
    checkpoint = active_checkpoint(DET, str(det_run[0] / 'epoch_1.pth'),
                                   str(tmp_path / 'active.pth'))
    single = run('tools/test.py', DET, checkpoint, '--work-dir',
                 tmp_path / 'single', '--out', tmp_path / 'single.pkl',
                 '--cfg-options', *ONE_IMAGE_PER_STEP)
    multi = run('tools/dist_test.sh', DET, checkpoint, 2, '--work-dir',
                tmp_path / 'multi', '--out', tmp_path / 'multi.pkl',
                '--cfg-options', *ONE_IMAGE_PER_STEP)
    metrics = summary_metrics(single)
    assert 'coco/bbox_mAP' in metrics and 'coco/segm_mAP' in metrics
    assert summary_metrics(multi) == metrics
    compare_det_predictions(tmp_path / 'single.pkl', tmp_path / 'multi.pkl')


# -- segmentation: two nodes with SyncBN, interrupted and resumed ------------
@pytest.fixture(scope='module')
def seg_config(tmp_path_factory) -> str:
    """The seg demo config plus the BN probe hook."""
    from mmengine.config import Config
    base = osp.join(REPO_ROOT, SEG)
    hooks = list(Config.fromfile(base).custom_hooks)
    path = tmp_path_factory.mktemp('seg_cfg') / 'probe_cfg.py'
    path.write_text(
        f"_base_ = '{base}'\n"
        "custom_imports = dict(imports=['mmtpspike', 'bn_stats_probe'], "
        "allow_failed_imports=False)\n"
        f"custom_hooks = {[dict(h) for h in hooks]!r} + "
        "[dict(type='BNStatsProbeHook')]\n")
    return str(path)


def seg_train_command(config, work_dir, nproc, *extra):
    return ['bash', 'tools/dist_train.sh', config, str(nproc), '--work-dir',
            str(work_dir), *extra, '--cfg-options', *SEG_RESUMABLE,
            *SYNC_BN]


@pytest.fixture(scope='module')
def seg_two_nodes(seg_config, tmp_path_factory):
    """An uninterrupted run on 2 nodes x 1 process on localhost."""
    work_dir = tmp_path_factory.mktemp('seg_two_nodes')
    port = free_port()
    nodes = []
    for rank in range(2):
        log = open(work_dir / f'node{rank}.log', 'w')
        nodes.append((subprocess.Popen(
            seg_train_command(seg_config, work_dir, 1) + SEED,
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=tool_env(NNODES=2, NODE_RANK=rank, PORT=port)), log))
    for process, log in nodes:
        process.wait(timeout=600)
        log.close()
    logs = [(work_dir / f'node{r}.log').read_text() for r in range(2)]
    for (process, _), text in zip(nodes, logs):
        assert process.returncode == 0, text[-4000:]
    return work_dir, logs[0]


def test_two_nodes_with_sync_bn(seg_two_nodes):
    work_dir, output = seg_two_nodes
    assert 'node 0 of 2, 1 process(es)' in output
    assert 'distributed on CPU: backend gloo, 2 processes' in output
    assert 'run as CPUSyncBN' in output
    assert f'Iter(train) [{SEG_ITERS}/{SEG_ITERS}]' in output
    stats = [torch.load(work_dir / f'bn_stats_rank{r}.pth') for r in range(2)]
    assert stats[0].keys() == stats[1].keys()
    synced = [name for name in stats[0]
              if name.startswith(('backbone.', 'neck.'))]
    assert any(name.startswith('neck.') for name in synced)
    for name in synced:
        kind, mean, var = stats[0][name]
        assert kind == 'CPUSyncBN', name
        # the same statistics on both ranks, which saw different images
        torch.testing.assert_close(stats[1][name][1:], (mean, var), rtol=0,
                                   atol=0)
        assert not torch.equal(var, torch.ones_like(var)), name


def interrupt_after_first_checkpoint(command, work_dir) -> None:
    """Start a run and stop it (SIGTERM to torchrun's process group) as
    soon as its first checkpoint is written."""
    with open(work_dir / 'interrupted.log', 'w') as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log,
                                   stderr=subprocess.STDOUT,
                                   env=tool_env(PORT=free_port()),
                                   start_new_session=True)
        deadline = time.monotonic() + 300
        while not (work_dir / 'last_checkpoint').is_file():
            assert process.poll() is None, (work_dir / 'interrupted.log'
                                            ).read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode != 0
    assert not (work_dir / f'iter_{SEG_ITERS}.pth').exists(), \
        'the run finished before it was interrupted'


def test_interrupted_run_resumes_without_loss(seg_config, seg_two_nodes,
                                              tmp_path):
    """1 node x 2 processes, interrupted, resumed: the same iterations,
    weights, optimizer and scheduler state as the uninterrupted run (2 x 1
    process: the same ranks, data and collectives)."""
    interrupt_after_first_checkpoint(
        seg_train_command(seg_config, tmp_path, 2) + SEED, tmp_path)
    # no seed on the command line: the resumed run takes the checkpoint's
    output = check(subprocess.run(
        seg_train_command(seg_config, tmp_path, 2, '--resume'),
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env=tool_env(PORT=free_port())))
    resumed_at = int(re.search(r'resumed epoch: \d+, iter: (\d+)',
                               output).group(1))
    assert 0 < resumed_at < SEG_ITERS
    expected = torch.load(seg_two_nodes[0] / f'iter_{SEG_ITERS}.pth',
                          weights_only=False)
    resumed = torch.load(tmp_path / f'iter_{SEG_ITERS}.pth',
                         weights_only=False)
    assert resumed['meta']['iter'] == expected['meta']['iter'] == SEG_ITERS
    assert resumed['meta']['seed'] == expected['meta']['seed'] == 0
    torch.testing.assert_close(resumed['state_dict'], expected['state_dict'])
    torch.testing.assert_close(resumed['optimizer']['state'],
                               expected['optimizer']['state'])
    assert resumed['param_schedulers'] == expected['param_schedulers']


def test_dist_test_matches_single_process_seg(seg_two_nodes, tmp_path):
    checkpoint = active_checkpoint(
        SEG, str(seg_two_nodes[0] / f'iter_{SEG_ITERS}.pth'),
        str(tmp_path / 'active.pth'), SYNC_BN)
    outputs = {}
    for name, command in (('single', ['tools/test.py']),
                          ('multi', ['tools/dist_test.sh'])):
        outputs[name] = run(*command, SEG, checkpoint,
                            *([2] if name == 'multi' else []), '--work-dir',
                            tmp_path / name, '--out', tmp_path / f'{name}_pred',
                            '--cfg-options', *SYNC_BN)
    metrics = summary_metrics(outputs['single'])
    assert metrics['mIoU'] > 0
    assert summary_metrics(outputs['multi']) == metrics
    names = sorted(os.listdir(tmp_path / 'single_pred'))
    assert len(names) == 8
    assert sorted(os.listdir(tmp_path / 'multi_pred')) == names
    for name in names:
        with open(tmp_path / 'single_pred' / name, 'rb') as f, \
                open(tmp_path / 'multi_pred' / name, 'rb') as g:
            assert f.read() == g.read(), name
