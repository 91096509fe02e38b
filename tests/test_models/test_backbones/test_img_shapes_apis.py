"""Image shapes reach the backbone under ``mmdet.apis.inference_detector``
and ``mmseg.apis.inference_model`` (no Runner, no hooks) once
``attach_img_shapes(model)`` is called; without it the backbone counts the
padding as image and says so (the control that shows the check can fail)."""
import math

import numpy as np
import pytest

import mmtpspike

DET_CFG = """
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='SDTV3', arch='t', depths=(1, 1, 1, 1),
                  stage4_stride=2, out_indices=(1, 2, 3),
                  pruning=dict(keep_ratios=0.5), init_cfg=None),
    neck=dict(in_channels=[48, 96, 128], start_level=0, out_channels=16),
    bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1))
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))]))
"""

SEG_CFG = """
_base_ = 'mmseg::_base_/models/fpn_r50.py'
custom_imports = dict(imports=['mmtpspike'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),
    backbone=dict(_delete_=True, type='SDTV3', arch='t', depths=(1, 1, 1, 1),
                  stage4_stride=2, pruning=dict(keep_ratios=0.5),
                  init_cfg=None),
    neck=dict(in_channels=[24, 48, 96, 128], out_channels=16),
    decode_head=dict(in_channels=[16] * 4, channels=16, num_classes=5,
                     norm_cfg=norm_cfg))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='PackSegInputs')]
"""

# 90 x 40 resizes to 96 x 43 and pads to 96 x 64: at stride 16 only 3 of 4
# token columns hold image
IMAGE = np.random.default_rng(0).integers(0, 255, (90, 40, 3), np.uint8)


def build(tmp_path, task):
    path = tmp_path / f'{task}.py'
    path.write_text(DET_CFG if task == 'det' else SEG_CFG)
    if task == 'det':
        from mmdet.apis import init_detector
        return init_detector(str(path), device='cpu')
    from mmseg.apis import init_model
    return init_model(str(path), device='cpu')


def infer(model, task):
    if task == 'det':
        from mmdet.apis import inference_detector
        return inference_detector(model, IMAGE)
    from mmseg.apis import inference_model
    return inference_model(model, IMAGE)


def first_block_valid(model):
    """``(rows, cols)`` of valid tokens of the single image, stride 16."""
    valid = model.backbone.token_records[0].valid[0]
    return int(valid.any(1).sum()), int(valid.any(0).sum())


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_apis_inference_gets_the_shapes(tmp_path, task):
    model = build(tmp_path, task)
    with pytest.warns(UserWarning, match='attach_img_shapes'):
        result = infer(model, task)
    height, width = result.metainfo['img_shape']
    assert (height, width) == (96, 43)
    assert first_block_valid(model) == (6, 4)  # padding counted as image

    handle = mmtpspike.attach_img_shapes(model)
    infer(model, task)
    assert first_block_valid(model) == (math.ceil(height / 16),
                                        math.ceil(width / 16)) == (6, 3)
    assert mmtpspike.attach_img_shapes(model) is not None  # idempotent
    assert len(model.data_preprocessor._forward_hooks) == 1

    handle.remove()
    assert not model.data_preprocessor._forward_hooks
    infer(model, task)
    assert first_block_valid(model) == (6, 4)


def test_mmdet_tta_model_gets_the_shapes(tmp_path):
    """mmdet's DetTTAModel runs ``module.test_step`` per augmentation; the
    shapes still come through the detector's data preprocessor."""
    from mmdet.models import DetTTAModel
    from mmdet.testing import demo_mm_inputs
    from mmengine.config import ConfigDict
    detector = build(tmp_path, 'det')
    tta = DetTTAModel(module=detector, tta_cfg=ConfigDict(
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=10)).eval()
    shapes = [(96, 43), (80, 40)]  # padded to 96 x 64 together
    packed = demo_mm_inputs(2, [[3, *shape] for shape in shapes])
    # two augmentations of the batch, as pseudo_collate gives them
    data = dict(inputs=[packed['inputs']] * 2,
                data_samples=[packed['data_samples']] * 2)
    records = []
    detector.backbone.pruner.register_record_hook(records.append)

    def counts():
        return [[int(v.sum()) for v in r.valid] for r in records
                if r.block_name == 'stages.2.blocks.0']

    with pytest.warns(UserWarning, match='no image shapes were given'):
        tta.test_step(data)
    assert counts() == [[24, 24]] * 2  # padding counted as image
    records.clear()
    mmtpspike.attach_img_shapes(tta)
    tta.test_step(data)
    expected = [math.ceil(h / 16) * math.ceil(w / 16) for h, w in shapes]
    assert counts() == [expected] * 2 == [[18, 15]] * 2
