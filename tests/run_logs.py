"""Read what mmengine's ``LoggerHook`` wrote for a tools/train.py or
tools/test.py run."""
import glob
import json
import os
from typing import Dict, List


def _single(pattern: str) -> str:
    paths = glob.glob(pattern)
    assert len(paths) == 1, f'expected one file {pattern}, found {paths}'
    return paths[0]


def evaluation_metrics(work_dir: str) -> Dict[str, float]:
    """Metrics of the one ``tools/test.py`` run in ``work_dir``
    (``<work_dir>/<timestamp>/<timestamp>.json``)."""
    with open(_single(os.path.join(work_dir, '*', '*.json'))) as file:
        return json.load(file)


def logged_scalars(work_dir: str) -> List[Dict[str, float]]:
    """Every scalar record of the one run in ``work_dir``
    (``<work_dir>/<timestamp>/vis_data/scalars.json``), in order."""
    pattern = os.path.join(work_dir, '*', 'vis_data', 'scalars.json')
    with open(_single(pattern)) as file:
        return [json.loads(line) for line in file]
