"""Save kept-token maps of every test image.

Used by ``tools/test.py --show-dir DIR --show-tokens``.
"""
import os
import os.path as osp

import cv2
from mmengine.hooks import Hook

from mmtpspike.registry import register_hook
from mmtpspike.visualization import (draw_token_grid, sample_name,
                                     sample_picture)
from .model_access import pruned_backbones


@register_hook
class TokenMapHook(Hook):
    """Write, for each test image, a PNG grid of the kept tokens and token
    scores of every transformer block (see ``draw_token_grid``).

    Files go to ``<work_dir>/<timestamp>/<out_dir>/tokens/<image name>.png``
    (event samples: ``<recording>_<t>us.png``, drawn over their event
    frames).

    Args:
        out_dir (str): Folder inside the run's directory. Default: 'vis'.
        interval (int): Draw every ``interval``-th batch. Default: 1.
        max_side (int): Longer side of each tile. Default: 320.
    """

    priority = 'LOW'

    def __init__(self, out_dir: str = 'vis', interval: int = 1,
                 max_side: int = 320) -> None:
        self.out_dir = out_dir
        self.interval = interval
        self.max_side = max_side

    def before_test(self, runner) -> None:
        self._backbones = pruned_backbones(runner)
        if not self._backbones:
            raise RuntimeError('TokenMapHook needs a backbone with token '
                               'pruning (model.backbone.pruning)')
        self._folder = osp.join(runner.work_dir, runner.timestamp,
                                self.out_dir, 'tokens')
        os.makedirs(self._folder, exist_ok=True)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        if batch_idx % self.interval or not data_batch:
            return
        records = self._backbones[0].token_records
        for row, (inputs, sample) in enumerate(
                zip(data_batch['inputs'], outputs)):
            picture = sample_picture(inputs, sample.metainfo)
            grid = draw_token_grid(picture, records, row, self.max_side)
            name = sample_name(sample.metainfo)
            cv2.imwrite(osp.join(self._folder, f'{name}.png'), grid)
