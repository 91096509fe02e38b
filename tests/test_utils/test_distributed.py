"""mmtpspike.utils.distributed: launcher environments, backend choice and
the CPU adaptations of a config and the end of a run (only a one-process
group is started here; the tools run distributed in
tests/test_tools/test_dist_tools.py)."""
import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from mmtpspike.utils import distributed
from mmtpspike.utils.config import SetupError
from mmtpspike.utils.distributed import (backend_in_options, choose_backend,
                                         cpu_config,
                                         destroys_group_without_gil,
                                         process_env, shutdown_distributed)

TORCHRUN = dict(RANK='1', WORLD_SIZE='4', LOCAL_RANK='1',
                MASTER_ADDR='10.0.0.2', MASTER_PORT='29411')


def test_torchrun_environment_is_used_as_is():
    assert process_env('pytorch', TORCHRUN) == TORCHRUN


def test_slurm_environment_is_translated():
    slurm = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1',
                 SLURM_NODELIST='node[3-4]', MASTER_ADDR='node3')
    assert process_env('slurm', slurm, port=29700) == dict(
        RANK='5', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='node3',
        MASTER_PORT='29700')


def test_slurm_master_without_scontrol(monkeypatch, tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))  # no scontrol
    slurm = dict(SLURM_PROCID='0', SLURM_NTASKS='2', SLURM_NODELIST='n[1-2]')
    with pytest.raises(SetupError, match="SLURM_NODELIST='n\\[1-2\\]'.*"
                       'set MASTER_ADDR'):
        process_env('slurm', slurm)


def test_open_mpi_environment_is_translated():
    mpi = dict(OMPI_COMM_WORLD_RANK='2', OMPI_COMM_WORLD_SIZE='3',
               OMPI_COMM_WORLD_LOCAL_RANK='0', MASTER_ADDR='host0')
    assert process_env('mpi', mpi) == dict(
        RANK='2', WORLD_SIZE='3', LOCAL_RANK='0', MASTER_ADDR='host0',
        MASTER_PORT='29500')


@pytest.mark.parametrize('launcher, environ, missing', [
    ('pytorch', {}, 'RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT'),
    ('slurm', dict(SLURM_PROCID='0'), 'SLURM_NTASKS'),
    ('mpi', dict(OMPI_COMM_WORLD_RANK='0', OMPI_COMM_WORLD_SIZE='2'),
     'MASTER_ADDR'),
])
def test_missing_launcher_variables_are_named(launcher, environ, missing):
    with pytest.raises(SetupError, match=missing):
        process_env(launcher, environ)


@pytest.mark.parametrize('configured, explicit, cuda, expected', [
    ('nccl', False, True, 'nccl'),  # GPUs: the config's choice
    ('gloo', False, True, 'gloo'),
    ('nccl', False, False, 'gloo'),  # CPU: gloo instead of the default
    ('gloo', True, False, 'gloo'),
    ('mpi', False, False, 'mpi'),
])
def test_backend_choice(configured, explicit, cuda, expected):
    assert choose_backend(dict(backend=configured), explicit, cuda) == \
        expected


def test_explicit_nccl_without_cuda_is_refused():
    with pytest.raises(SetupError, match='nccl.*needs CUDA.*gloo'):
        choose_backend(dict(backend='nccl'), explicit=True, cuda=False)


@pytest.mark.parametrize('options, explicit', [
    (None, False),
    ({'model.backbone.norm_cfg.type': 'SyncBN'}, False),
    ({'env_cfg.dist_cfg.backend': 'gloo'}, True),
    ({'env_cfg.dist_cfg': dict(backend='gloo')}, True),
    ({'env_cfg': dict(dist_cfg=dict(backend='gloo'))}, True),
])
def test_backend_in_options(options, explicit):
    assert backend_in_options(options) is explicit


def test_cpu_config_renames_sync_bn_and_drops_device_ids():
    cfg = Config(dict(
        model=dict(
            backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
            neck=dict(norm_cfg=dict(type='BN')),
            decode_head=dict(norm_cfg=dict(type='SyncBN'))),
        find_unused_parameters=True))
    assert cpu_config(cfg) == 2
    assert cfg.model.backbone.norm_cfg == dict(type='CPUSyncBN',
                                               requires_grad=True)
    assert cfg.model.neck.norm_cfg.type == 'BN'
    assert cfg.model.decode_head.norm_cfg.type == 'CPUSyncBN'
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True, device_ids=None)


def test_cpu_config_refuses_what_needs_cuda():
    with pytest.raises(SetupError, match="sync_bn='torch'.*norm_cfg"):
        cpu_config(Config(dict(model=dict(), sync_bn='torch')))
    with pytest.raises(SetupError, match='FullyShardedDataParallel'):
        cpu_config(Config(dict(model=dict(), model_wrapper_cfg=dict(
            type='MMFullyShardedDataParallel'))))


def test_shutdown_without_group_does_nothing():
    assert not dist.is_initialized()
    shutdown_distributed()
    assert not dist.is_initialized()


@pytest.mark.parametrize('without_gil, expected', [
    (True, ['barrier', 'destroy_process_group']),
    (False, ['barrier']),
])
def test_shutdown_meets_at_a_barrier_then_destroys_where_safe(
        monkeypatch, tmp_path, without_gil, expected):
    """A barrier, then the destroy only where torch frees the group without
    the GIL (on older torch the destroy can deadlock: the group is left to
    interpreter exit)."""
    destroy = dist.destroy_process_group
    calls = []

    def recorded(name):
        original = getattr(dist, name)

        def call(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return call

    for name in ('barrier', 'destroy_process_group'):
        monkeypatch.setattr(dist, name, recorded(name))
    monkeypatch.setattr(distributed, 'destroys_group_without_gil',
                        lambda: without_gil)
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        shutdown_distributed()
    finally:
        if dist.is_initialized():
            destroy()
    assert calls == expected


@pytest.mark.parametrize('version, without_gil', [
    ('2.1.2+cu121', False), ('2.7.1', False), ('2.8.0+cpu', True),
    ('2.14.1+cu130', True)])
def test_group_is_freed_without_gil_from_torch_2_8(monkeypatch, version,
                                                   without_gil):
    monkeypatch.setattr(torch, '__version__', version)
    assert destroys_group_without_gil() is without_gil
