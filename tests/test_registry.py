"""Registration: mmtpspike modules in mmdet and mmseg, stock ones intact."""
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope

import mmtpspike  # noqa: F401


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
