"""A backbone that needs image shapes and gets none warns once, dense or
pruned; a prunable stage at the wrong declared stride is an error;
``attach_img_shapes`` refuses models it cannot serve."""
import warnings

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel

from mmtpspike import attach_img_shapes
from mmtpspike.models import SDTV3
from mmtpspike.models.backbones import prunable
from mmtpspike.models.backbones.img_shapes import (batch_img_shapes,
                                                   check_stage_stride)


def tiny(pruning=None, **kwargs):
    torch.manual_seed(0)
    return SDTV3(arch='t', depths=(1, 1, 1, 1), pruning=pruning,
                 **kwargs).eval()


def padded(*shape):
    x = torch.rand(*shape)
    x[..., 40:, :] = 0  # 40 image rows, padded to 64
    return x


@pytest.fixture
def logged(monkeypatch):
    """Messages the backbone sent to mmengine's logger."""
    messages = []
    monkeypatch.setattr(prunable, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    return messages


@pytest.mark.parametrize('pruning', [None, dict(keep_ratios=0.5)],
                         ids=['dense', 'pruned'])
@pytest.mark.parametrize('shape', [(2, 3, 64, 64), (2, 1, 3, 64, 64)],
                         ids=['images', 'timesteps'])
def test_warns_once_without_shapes(pruning, shape, logged):
    model = tiny(pruning)
    with torch.no_grad(), pytest.warns(UserWarning) as caught:
        out = model(padded(*shape))
    message = str(caught[0].message)
    assert 'no image shapes were given' in message
    assert "dict(type='PaddingAwarePruningHook')" in message
    assert 'attach_img_shapes(model)' in message
    assert logged == [message]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('error')
        model(padded(*shape))
    assert len(logged) == 1
    # the warning is earned: the shapes change the output
    model.set_img_shapes([(40, 64)] * 2)
    with torch.no_grad():
        masked = model(padded(*shape))
    assert not torch.equal(out[-1], masked[-1])


def test_silent_when_shapes_are_given_or_not_needed(logged):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with torch.no_grad():
            aware = tiny(dict(keep_ratios=0.5))
            aware.set_img_shapes([(40, 64)] * 2, (64, 64))
            aware(padded(2, 3, 64, 64))
            tiny(mask_padding=False)(padded(2, 3, 64, 64))
            tiny(dict(keep_ratios=0.5), mask_padding=False)(
                padded(2, 3, 64, 64))
            tiny()(torch.rand(2, 3, 64, 64))  # not padded
    assert logged == []


def test_shapes_for_another_size_are_named_in_the_warning(logged):
    model = tiny()
    model.set_img_shapes([(40, 64)] * 2, (96, 96))
    with torch.no_grad(), pytest.warns(UserWarning,
                                       match='were for a 96 x 96 batch, '
                                       'not this 64 x 64 one'):
        model(padded(2, 3, 64, 64))


def test_wrong_declared_stride_is_an_error():
    model = tiny()
    # the public code's mistake: stage 4 declared stride 32, runs at 16
    model.stage_strides = [4, 8, 16, 32]
    with torch.no_grad(), pytest.raises(
            ValueError, match=r"'stages.3.blocks' declares stride 32 but gets "
            r'a 6 x 4 map for a 96 x 64 input, which is stride 16'):
        model(torch.rand(1, 3, 96, 64))


def test_stride_check_accepts_floor_and_ceil_maps():
    check_stage_stride('s', 16, (5, 4), (75, 53))  # ceil
    check_stage_stride('s', 16, (4, 3), (75, 53))  # floor
    with pytest.raises(ValueError, match='which is stride 8'):
        check_stage_stride('s', 16, (10, 7), (75, 53))
    with pytest.raises(ValueError, match='which is no integer stride'):
        check_stage_stride('s', 16, (5, 40), (75, 53))


def test_batch_img_shapes_reads_what_preprocessors_return():
    from mmengine.structures import BaseDataElement
    samples = [BaseDataElement(metainfo=dict(img_shape=(40, 50, 3),
                                             batch_input_shape=(64, 64)))]
    assert batch_img_shapes(dict(inputs=torch.zeros(1, 3, 64, 96),
                                 data_samples=samples)) == ([(40, 50)],
                                                            (64, 96))
    assert batch_img_shapes(dict(inputs=[torch.zeros(3, 40, 50)],
                                 data_samples=samples)) == ([(40, 50)],
                                                            (64, 64))
    assert batch_img_shapes(dict(inputs=torch.zeros(1, 3, 64, 64),
                                 data_samples=None)) == (None, None)


class Detector(BaseModel):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.backbone(inputs)


def test_attach_refuses_models_it_cannot_serve():
    with pytest.raises(ValueError, match='no module with set_img_shapes'):
        attach_img_shapes(Detector(nn.Conv2d(3, 3, 1)))
    with pytest.raises(ValueError, match=r"\['SDTV3'\] in Sequential sit "
                       'in no model with a data_preprocessor'):
        attach_img_shapes(nn.Sequential(tiny()))
    served = Detector(tiny())
    with pytest.raises(ValueError, match='sit in no model'):
        attach_img_shapes(nn.Sequential(served, tiny()))
    assert not served.data_preprocessor._forward_hooks  # all or nothing
    model = Detector(tiny())
    attach_img_shapes(model)
    attach_img_shapes(model)
    assert len(model.data_preprocessor._forward_hooks) == 1
