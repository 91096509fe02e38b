"""A Mask R-CNN and a Semantic FPN train step on CUDA with ``--amp``.

The token-pruned demo configs train through ``tools/train.py --amp`` (mmengine
``AmpOptimWrapper``, float16 autocast) for a few iterations and evaluate.
"""
import glob
import re

from mmengine.config import Config

from gpu_checks import needs_cuda, require_mmcv_cuda_ops
from tool_runner import run_tool

pytestmark = needs_cuda


def train_with_amp(config: str, work_dir, *options: str) -> str:
    require_mmcv_cuda_ops()
    out = run_tool('tools/train.py', config, '--amp', '--work-dir',
                   str(work_dir), '--cfg-options', *options)
    dumped = Config.fromfile(glob.glob(str(work_dir / '*.py'))[0])
    assert dumped.optim_wrapper.type == 'AmpOptimWrapper'
    losses = [float(v) for v in re.findall(r' loss: ([0-9.naif]+)', out)]
    assert losses and all(v == v and v < float('inf') for v in losses), out
    return out


def test_mask_rcnn_train_step_amp(tmp_path):
    out = train_with_amp(
        'configs/det/sdtv3_tp_coco_demo.py', tmp_path,
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.logger.interval=1')
    assert 'coco/bbox_mAP:' in out and 'coco/segm_mAP:' in out


def test_semantic_fpn_train_step_amp(tmp_path):
    out = train_with_amp(
        'configs/seg/sdtv3_tp_ade20k_demo.py', tmp_path,
        'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=4',
        'default_hooks.logger.interval=1')
    assert 'mIoU:' in out
