"""Shared set-up of ``tools/train.py`` and ``tools/test.py`` (and what the
report tools add: training the dense config they start from, writing their
outputs).

Bad input found while setting up (missing config, unknown module type,
missing data, unsafe checkpoint), or an unreadable image met while training
or testing, ends the tool with one clear line on stderr and exit code 1;
``MMTPSPIKE_DEBUG=1`` shows the full traceback instead. Other errors raised
while training or testing are not touched.
"""
import argparse
import functools
import json
import os
import os.path as osp
import re
import sys
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction

from mmtpspike.utils.config import SetupError, load_config  # noqa: F401

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _datasets(cfg: Config) -> Iterator[Tuple[str, dict]]:
    """Yield ``(field path, dataset cfg)`` for every leaf dataset."""
    for loader in LOADERS:
        if not isinstance(cfg.get(loader), dict):
            continue
        stack = [(f'{loader}.dataset', cfg[loader].get('dataset'))]
        while stack:
            field, dataset = stack.pop()
            if not isinstance(dataset, dict):
                continue
            if isinstance(dataset.get('dataset'), dict):
                stack.append((f'{field}.dataset', dataset['dataset']))
            elif isinstance(dataset.get('datasets'), (list, tuple)):
                stack.extend((f'{field}.datasets.{i}', d)
                             for i, d in enumerate(dataset['datasets']))
            else:
                yield field, dataset


def check_data_paths(cfg: Config, loaders: Tuple[str, ...] = LOADERS) -> None:
    """Check that the data roots / annotation files of the used loaders exist.

    Raises:
        SetupError: naming the config field, the missing path and the fix.
    """
    for field, dataset in _datasets(cfg):
        if not field.startswith(loaders):
            continue
        root = dataset.get('data_root') or ''
        if root and not osp.isdir(root):
            raise SetupError(
                f"data root '{root}' ({field}.data_root) does not exist: put "
                f'the dataset there or pass --cfg-options '
                f'{field}.data_root=/path/to/data')
        ann_file = dataset.get('ann_file')
        if ann_file:
            full = osp.join(root, ann_file) if root else ann_file
            if not osp.isfile(full):
                raise SetupError(f"annotation file '{full}' ({field}.ann_file) "
                                 f'does not exist')


def _pipelines(dataset) -> Iterator[list]:
    """Yield the pipeline of a dataset cfg and of every dataset inside it."""
    if not isinstance(dataset, dict):
        return
    if isinstance(dataset.get('pipeline'), list):
        yield dataset['pipeline']
    yield from _pipelines(dataset.get('dataset'))
    for inner in dataset.get('datasets') or ():
        yield from _pipelines(inner)


def _is_image_loader(transform) -> bool:
    """Whether a transform cfg is mmcv's ``LoadImageFromFile``."""
    kind = transform.get('type') if isinstance(transform, dict) else None
    if isinstance(kind, str):
        return kind.rsplit('.', 1)[-1] == 'LoadImageFromFile'
    from mmcv.transforms import LoadImageFromFile
    return kind is LoadImageFromFile


def check_image_loading(cfg: Config, loaders: Tuple[str, ...],
                        skip_unreadable: bool = False) -> None:
    """Load images of the loaders with ``CheckedLoadImageFromFile``.

    An unreadable image then ends the tool with one ``error:`` line naming
    the file, or, for ``train_dataloader`` with ``skip_unreadable``, is
    skipped with a warning (see
    :class:`mmtpspike.datasets.CheckedLoadImageFromFile`).
    """
    from mmtpspike.datasets import CheckedLoadImageFromFile
    for loader in loaders:
        if not isinstance(cfg.get(loader), dict):
            continue
        skip = skip_unreadable and loader == 'train_dataloader'
        for pipeline in _pipelines(cfg[loader].get('dataset')):
            for transform in pipeline:
                if _is_image_loader(transform):
                    transform['type'] = CheckedLoadImageFromFile.__name__
                    transform['skip_unreadable'] = skip


_UNKNOWN_TYPE = re.compile(r'(\S+) is not in the (\S+) registry')


def explain(err: BaseException) -> str:
    """One line describing a set-up error."""
    message = str(err).strip().strip('"\'')
    match = _UNKNOWN_TYPE.search(message)
    if isinstance(err, KeyError) and match:
        return (f"unknown module type '{match.group(1).strip('`')}' in the "
                f'config (not in the {match.group(2)} registry): check the '
                f'spelling, or add its package to custom_imports')
    first_line = message.splitlines()[0] if message else type(err).__name__
    return f'{type(err).__name__}: {first_line}' if not isinstance(
        err, SetupError) else first_line


def friendly_errors(func: Callable) -> Callable:
    """Turn set-up errors of a tool's ``main`` into one line + exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SetupError as err:
            if os.environ.get('MMTPSPIKE_DEBUG'):
                raise
            cause = err.__cause__ if err.__cause__ is not None else err
            print(f'error: {explain(cause)}', file=sys.stderr)
            sys.exit(1)

    return wrapper


def build_runner(cfg: Config):
    """Build the mmengine runner of a config, wrapping build errors."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    try:
        if 'runner_type' not in cfg:
            return Runner.from_cfg(cfg)
        return RUNNERS.build(cfg)
    except (KeyError, TypeError, ValueError, FileNotFoundError,
            ImportError) as err:
        raise SetupError(explain(err)) from err


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config name>`` as the mm tools do."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def parse_common_args(parser: argparse.ArgumentParser,
                      argv: Optional[Sequence[str]] = None
                      ) -> argparse.Namespace:
    """Add the options train and test share, parse ``argv`` (the command
    line when None), export ``LOCAL_RANK``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'model.backbone.pruning.keep_ratios=0.56')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's runner wrote last in ``work_dir``."""
    with open(osp.join(work_dir, 'last_checkpoint')) as file:
        return osp.join(work_dir, osp.basename(file.read().strip()))


def train_dense(config: str, work_dir: str,
                options: Optional[dict] = None) -> str:
    """Train ``config`` (with ``options`` overrides) in
    ``work_dir/train``; returns its last checkpoint."""
    cfg = load_config(config, options)
    cfg.work_dir = osp.join(work_dir, 'train')
    check_data_paths(cfg)
    build_runner(cfg).train()
    return last_checkpoint(cfg.work_dir)


def write_report(text: str, rows: List[dict], out: Optional[str] = None,
                 json_path: Optional[str] = None) -> None:
    """Print the report; also write it to ``out`` and the rows as JSON to
    ``json_path`` when given."""
    print(text)
    if out:
        with open(out, 'w') as file:
            file.write(text + '\n')
    if json_path:
        with open(json_path, 'w') as file:
            json.dump(rows, file, indent=1)
