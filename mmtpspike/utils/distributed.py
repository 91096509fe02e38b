"""Distributed set-up of ``tools/train.py`` and ``tools/test.py``.

On GPUs mmengine's runner starts the process group itself (NCCL by default).
On a machine where torch sees no CUDA device that path cannot work:
``mmengine.dist.init_dist`` always calls ``torch.cuda.set_device``, NCCL
needs GPUs, DDP is built with ``device_ids=[LOCAL_RANK]`` and torch's
``SyncBatchNorm`` refuses CPU tensors. :func:`setup_distributed` then

* picks the gloo backend (an explicit ``env_cfg.dist_cfg.backend`` from
  ``--cfg-options`` is kept, and ``nccl`` is refused with the fix);
* starts the process group from the launcher's environment (torchrun,
  SLURM or Open MPI variables), so the runner finds it started;
* builds DDP without ``device_ids`` (CPU modules);
* runs ``SyncBN`` layers as :class:`~mmtpspike.models.layers.CPUSyncBN`,
  which synchronises batch statistics over gloo.

:func:`shutdown_distributed` ends a finished run's process group.
"""
import datetime
import os
import subprocess
from typing import Dict, Mapping, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.utils import digit_version

from .config import SetupError

#: launcher -> environment variables of (rank, world size, local rank)
LAUNCHER_ENV = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'),
    'mpi': ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
            'OMPI_COMM_WORLD_LOCAL_RANK'),
}
DEFAULT_MASTER_PORT = '29500'
CPU_SYNC_BN = 'CPUSyncBN'


def _first_slurm_host(nodelist: str) -> str:
    """First host name of a SLURM node list (``node[1-4]`` -> ``node1``)."""
    try:
        result = subprocess.run(['scontrol', 'show', 'hostnames', nodelist],
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        raise SetupError(f'cannot list the hosts of SLURM_NODELIST='
                         f'{nodelist!r} with scontrol ({err}): set '
                         f'MASTER_ADDR to the first host') from None
    return result.stdout.split()[0]


def process_env(launcher: str, environ: Mapping[str, str],
                port: Optional[int] = None) -> Dict[str, str]:
    """Variables ``torch.distributed`` reads (``env://``), from a launcher's.

    Args:
        launcher (str): ``'pytorch'`` (torchrun), ``'slurm'`` or ``'mpi'``.
        environ (Mapping): the process environment.
        port (int, optional): master port (``dist_cfg.port``); otherwise
            ``MASTER_PORT`` or 29500.

    Returns:
        dict: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
        ``MASTER_PORT``.

    Raises:
        SetupError: the launcher's variables are missing (the tool was not
            started by that launcher).
    """
    if launcher not in LAUNCHER_ENV:
        raise SetupError(f'unknown launcher {launcher!r}; expected one of '
                         f'{sorted(LAUNCHER_ENV)}')
    rank, world_size, local_rank = LAUNCHER_ENV[launcher]
    missing = [name for name in (rank, world_size) if name not in environ]
    if launcher == 'pytorch':
        missing += [name for name in ('MASTER_ADDR', 'MASTER_PORT')
                    if name not in environ]
    if missing:
        raise SetupError(
            f"--launcher {launcher} needs {', '.join(missing)} in the "
            f'environment: start the tool with tools/dist_train.sh / '
            f'tools/dist_test.sh (torchrun), srun or mpirun, or use '
            f'--launcher none')
    env = dict(RANK=environ[rank], WORLD_SIZE=environ[world_size],
               LOCAL_RANK=environ.get(local_rank, '0'))
    address = environ.get('MASTER_ADDR')
    if address is None and launcher == 'slurm':
        address = _first_slurm_host(environ['SLURM_NODELIST'])
    if address is None:
        raise SetupError(f'--launcher {launcher} needs MASTER_ADDR (the '
                         f'address of the rank-0 host) in the environment')
    env['MASTER_ADDR'] = address
    env['MASTER_PORT'] = str(port) if port is not None else environ.get(
        'MASTER_PORT', DEFAULT_MASTER_PORT)
    return env


def choose_backend(dist_cfg: dict, explicit: bool, cuda: bool) -> str:
    """The backend to start with: the config's, or gloo without CUDA.

    Args:
        dist_cfg (dict): ``env_cfg.dist_cfg`` of the config.
        explicit (bool): the user set the backend with ``--cfg-options``.
        cuda (bool): torch sees a CUDA device.

    Raises:
        SetupError: an explicit ``nccl`` on a machine without CUDA.
    """
    backend = dist_cfg.get('backend', 'nccl')
    if cuda or backend != 'nccl':
        return backend
    if explicit:
        raise SetupError("env_cfg.dist_cfg.backend='nccl' needs CUDA GPUs "
                         'and torch sees none: use backend=gloo on CPU')
    return 'gloo'


def backend_in_options(cfg_options: Optional[dict]) -> bool:
    """Whether ``--cfg-options`` sets ``env_cfg.dist_cfg.backend``."""
    options = cfg_options or {}
    if 'env_cfg.dist_cfg.backend' in options:
        return True
    dist_cfg = options.get('env_cfg.dist_cfg') or (
        options.get('env_cfg') or {}).get('dist_cfg') or {}
    return 'backend' in dist_cfg


def _init_process_group(launcher: str, dist_cfg: dict) -> None:
    """Start the default process group without touching CUDA."""
    os.environ.update(process_env(launcher, os.environ, dist_cfg.get('port')))
    kwargs = {k: v for k, v in dist_cfg.items() if k not in ('backend', 'port')}
    if kwargs.get('timeout') is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
    dist.init_process_group(backend=dist_cfg['backend'], **kwargs)


def _rename_norm_types(node, old: str, new: str) -> int:
    """Replace ``type=old`` by ``type=new`` in every dict under ``node``."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == old:
            node['type'] = new
            count += 1
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return 0
    return count + sum(_rename_norm_types(c, old, new) for c in children)


def _cpu_model_wrapper(cfg: Config) -> dict:
    """DDP config without ``device_ids``: the model stays on CPU."""
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    if wrapper['type'] not in ('MMDistributedDataParallel',
                               'DistributedDataParallel'):
        raise SetupError(f"model_wrapper_cfg type {wrapper['type']!r} needs "
                         f'CUDA; on CPU use MMDistributedDataParallel')
    wrapper['device_ids'] = None
    return wrapper


def cpu_config(cfg: Config) -> int:
    """Adapt a config to data-parallel training on CPU, in place.

    DDP is built without ``device_ids`` and every ``type='SyncBN'`` under
    ``cfg.model`` becomes ``CPUSyncBN``.

    Returns:
        int: how many ``SyncBN`` norm configs were renamed.

    Raises:
        SetupError: ``sync_bn`` (mmengine's conversion to torch's / mmcv's
            SyncBatchNorm) or a model wrapper that needs CUDA.
    """
    if cfg.get('sync_bn') is not None:
        raise SetupError(f"sync_bn={cfg.sync_bn!r} converts BN to a "
                         f'SyncBatchNorm that needs CUDA; on CPU set '
                         f"norm_cfg=dict(type='SyncBN') in the model instead")
    cfg.model_wrapper_cfg = _cpu_model_wrapper(cfg)
    return _rename_norm_types(cfg.model, 'SyncBN', CPU_SYNC_BN)


def setup_distributed(cfg: Config, explicit_backend: bool) -> None:
    """Prepare a distributed run (``cfg.launcher != 'none'``).

    With CUDA: checks that this process has a GPU and leaves the start-up to
    mmengine. Without CUDA: starts the process group (gloo unless the
    config asks for another CPU backend) and adapts the config with
    :func:`cpu_config`, printing on rank 0 what it chose.

    Args:
        cfg (Config): the tool's config (modified in place).
        explicit_backend (bool): the user chose ``env_cfg.dist_cfg.backend``
            with ``--cfg-options``.
    """
    if cfg.get('launcher', 'none') == 'none':
        return
    cuda = torch.cuda.is_available()
    dist_cfg = cfg.setdefault('env_cfg', Config()).setdefault(
        'dist_cfg', Config())
    dist_cfg['backend'] = choose_backend(dist_cfg, explicit_backend, cuda)
    if cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', 0))
        if local_rank >= torch.cuda.device_count():
            raise SetupError(
                f'local rank {local_rank} has no GPU: torch sees '
                f'{torch.cuda.device_count()}; start at most that many '
                f'processes per node')
        return
    renamed = cpu_config(cfg)
    if not dist.is_initialized():
        _init_process_group(cfg.launcher, dist_cfg)
    if dist.get_rank() == 0:
        print(f'distributed on CPU: backend {dist_cfg.backend}, '
              f'{dist.get_world_size()} processes' +
              (f', {renamed} SyncBN config(s) run as {CPU_SYNC_BN}'
               if renamed else ''))


def destroys_group_without_gil() -> bool:
    """Whether this torch frees a process group with the GIL released.

    From torch 2.8 (pytorch#154976) the C++ destructor of a Python-owned
    process group releases the GIL (checked in the wheels' bindings: 2.8.0
    frees ``ProcessGroup`` without the GIL, 2.7.1 only the backends, which
    the group owns). Before, it joins gloo's worker threads
    while holding it, and a worker that is still freeing a finished
    collective (its tensors' Python objects need the GIL) waits for it
    forever: ``destroy_process_group`` deadlocks now and then (seen as a
    torchrun test that never exits on torch 2.1, 3 runs in 58 here, with the
    main thread in ``ProcessGroupGloo::~ProcessGroupGloo`` joining a worker
    in ``gil_scoped_acquire``).
    """
    return digit_version(torch.__version__) >= digit_version('2.8.0')


def shutdown_distributed() -> None:
    """End the default process group of a finished run, on every rank.

    All ranks meet at a barrier, so none leaves while another still talks
    to it. Where torch frees the group without the GIL
    (:func:`destroys_group_without_gil`) the group is then destroyed: left
    to interpreter exit, torch 2.14's gloo group aborts now and then
    (``terminate called without an active exception``, the rank exits with
    SIGABRT after a good run: 2 runs in 20 here). On older torch destroying
    it can deadlock, so it is left to exit there, as mmengine does. Does
    nothing when no group was started. Call it only on success: a rank
    that failed never reaches the barrier.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    if destroys_group_without_gil():
        dist.destroy_process_group()
