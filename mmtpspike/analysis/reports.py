"""What the report tools (``pruning_report.py``, ``tracking_report.py``)
share: training the dense config they start from and writing their
outputs."""
import json
import os.path as osp
from typing import List, Optional

from mmtpspike.utils.launch import build_runner, check_data_paths, load_config


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
