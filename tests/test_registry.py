"""Registration: mmtpspike modules in mmdet and mmseg, stock ones intact,
and detection-only / segmentation-only environments."""
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401
from active_network import activate, assert_active


def test_models_build_from_both_scopes():
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    for registry in (DET_MODELS, SEG_MODELS):
        backbone = registry.build(dict(type='SDTV3', arch='t'))
        neck = registry.build(
            dict(type='SpikeFPN', in_channels=[24, 48, 96, 128],
                 out_channels=16, num_outs=4))
        assert backbone.out_channels == [24, 48, 96, 128]
        assert neck.num_outs == 4


def test_hooks_registered_in_both_scopes():
    from mmdet.registry import HOOKS as DET_HOOKS
    from mmseg.registry import HOOKS as SEG_HOOKS
    for registry in (DET_HOOKS, SEG_HOOKS):
        for name in ('RetentionScheduleHook', 'TokenStatsHook',
                     'PaddingAwarePruningHook'):
            assert registry.get(name) is not None, name


def test_stock_mask_rcnn_still_builds(tmp_path):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    init_default_scope('mmdet')
    cfg_file = tmp_path / 'mask_rcnn.py'
    cfg_file.write_text(
        "_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'\n")
    cfg = Config.fromfile(str(cfg_file))
    cfg.model.backbone.init_cfg = None
    detector = MODELS.build(cfg.model)
    assert type(detector).__name__ == 'MaskRCNN'
    assert type(detector.backbone).__name__ == 'ResNet'
    assert type(detector.neck).__name__ == 'FPN'


def test_stock_segmentor_still_builds():
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    model = MODELS.build(
        ConfigDict(
            type='EncoderDecoder',
            backbone=dict(type='ResNetV1c', depth=18, out_indices=(0, 1, 2, 3)),
            neck=dict(type='FPN', in_channels=[64, 128, 256, 512],
                      out_channels=32, num_outs=4),
            decode_head=dict(type='FPNHead', in_channels=[32] * 4,
                             in_index=[0, 1, 2, 3],
                             feature_strides=[4, 8, 16, 32],
                             channels=16, num_classes=3)))
    assert type(model.backbone).__name__ == 'ResNetV1c'


def test_mmcv_ops_compiled_on_cpu():
    from mmcv.ops import nms, roi_align
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    # f(y, x) = 4 y + x is linear, so each bin's average is f(bin centre)
    feat = torch.arange(16.).view(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 3., 3.]])
    out = roi_align(feat, rois, (2, 2), 1.0, 2, 'avg', False)
    expected = torch.tensor([[3.75, 5.25], [9.75, 11.25]])
    assert torch.allclose(out[0, 0], expected)


# Runs in a fresh interpreter where the task package ``hidden`` cannot be
# imported (as if it were not installed): builds the config's model, loads the
# weights and inputs the test saved, and saves the backbone + neck features.
ONE_TASK_PACKAGE = """
import sys
sys.modules[{hidden!r}] = None
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmtpspike.registry import INSTALLED_TASK_PACKAGES
from {kept}.registry import HOOKS, MODELS
assert INSTALLED_TASK_PACKAGES == ({kept!r},), INSTALLED_TASK_PACKAGES
cfg = Config.fromfile({config!r})
init_default_scope({kept!r})
model = MODELS.build(cfg.model).eval()
model.load_state_dict(torch.load({weights!r}), strict=True)
with torch.no_grad():
    feats = model.extract_feat(torch.load({inputs!r}))
torch.save(feats, {out!r})
for name in ('PaddingAwarePruningHook', 'TokenStatsHook'):
    assert HOOKS.get(name) is not None, name
print(type(model.neck).__mro__[1].__module__)
"""


@pytest.mark.parametrize('kept, hidden, config, fpn_module', [
    ('mmseg', 'mmdet', 'configs/seg/sdtv3_tp_ade20k_demo.py',
     'mmseg.models.necks.fpn'),
    ('mmdet', 'mmseg', 'configs/det/sdtv3_tp_coco_demo.py',
     'mmdet.models.necks.fpn'),
], ids=['segmentation_only', 'detection_only'])
def test_one_task_package_is_enough(repo_root, tmp_path, kept, hidden, config,
                                    fpn_module):
    """Without mmdet (or mmseg) installed, importing mmtpspike registers
    into the other package, and the config's pruned model computes exactly
    what it computes with both installed (same weights and inputs)."""
    cfg = Config.fromfile(f'{repo_root}/{config}')
    init_default_scope(kept)
    from mmengine.registry import MODELS
    model = MODELS.build(cfg.model).eval()
    inputs = torch.rand(2, 3, 96, 128,
                        generator=torch.Generator().manual_seed(1))
    activate(model.backbone, inputs)
    assert_active(model.backbone, inputs)
    with torch.no_grad():
        expected = model.extract_feat(inputs)
    paths = {name: str(tmp_path / f'{name}.pt')
             for name in ('weights', 'inputs', 'out')}
    torch.save(model.state_dict(), paths['weights'])
    torch.save(inputs, paths['inputs'])
    script = ONE_TASK_PACKAGE.format(kept=kept, hidden=hidden, config=config,
                                     **paths)
    result = subprocess.run([sys.executable, '-c', script], cwd=repo_root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == fpn_module
    for got, want in zip(torch.load(paths['out']), expected):
        assert torch.equal(got, want)


def test_no_task_package_is_a_clear_import_error(repo_root):
    script = ("import sys\n"
              "sys.modules['mmdet'] = sys.modules['mmseg'] = None\n"
              "import mmtpspike\n")
    result = subprocess.run([sys.executable, '-c', script], cwd=repo_root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('ImportError: mmtpspike registers its models into '
                           'mmdet and / or mmseg, and neither is installed')
    assert 'pip install' in last
