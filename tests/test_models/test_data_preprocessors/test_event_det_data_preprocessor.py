"""EventDetDataPreprocessor: mmdet's batching, then [B, T, C, H, W]."""
import pytest
import torch
from mmdet.structures import DetDataSample

from mmtpspike.models.data_preprocessors import EventDetDataPreprocessor


def channel_coded(channels, height, width):
    """``[channels, H, W]`` whose channel ``k`` holds the value ``k + 1``."""
    codes = torch.arange(1, channels + 1, dtype=torch.float32)
    return codes.view(-1, 1, 1).expand(channels, height, width).clone()


def test_unfolds_time_major_channels_and_pads_with_zeros():
    preprocessor = EventDetDataPreprocessor(pad_size_divisor=8)
    inputs = [channel_coded(6, 5, 7), channel_coded(6, 8, 3)]
    samples = [DetDataSample(metainfo=dict(img_shape=x.shape[1:]))
               for x in inputs]
    out = preprocessor(dict(inputs=inputs, data_samples=samples))
    batch = out['inputs']
    assert batch.shape == (2, 3, 2, 8, 8)
    # channel t * 2 + c of the transforms is timestep t, polarity c
    for t in range(3):
        for c in range(2):
            assert torch.all(batch[0, t, c, :5, :7] == t * 2 + c + 1)
    assert torch.all(batch[0, :, :, 5:] == 0)
    assert torch.all(batch[1, :, :, :, 3:] == 0)
    assert out['data_samples'][0].batch_input_shape == (8, 8)


def test_refuses_channels_that_are_not_whole_time_bins():
    preprocessor = EventDetDataPreprocessor(event_channels=2)
    with pytest.raises(ValueError, match='not a multiple of event_channels'):
        preprocessor(dict(inputs=[torch.zeros(3, 32, 32)]))


@pytest.mark.parametrize('option', [
    dict(mean=[0.] * 4, std=[1.] * 4), dict(bgr_to_rgb=True)])
def test_refuses_colour_normalisation(option):
    with pytest.raises(ValueError, match='event counts'):
        EventDetDataPreprocessor(**option)
