"""SpikeFPN: drop-in for mmdet / mmseg FPN."""
import pytest
import torch
from mmdet.models.necks import FPN

from mmtpspike.models import SpikeFPN
from mmtpspike.models.layers import spike_driven

IN_CHANNELS = [8, 16, 32, 48]


def _inputs(batch=2):
    sizes = [(25, 41), (13, 21), (7, 11), (7, 11)]
    return [torch.rand(batch, c, h, w) for c, (h, w) in zip(IN_CHANNELS,
                                                            sizes)]


@pytest.mark.parametrize('kwargs', [
    dict(num_outs=4),
    dict(num_outs=5),
    dict(num_outs=5, add_extra_convs='on_input'),
    dict(num_outs=5, start_level=1, add_extra_convs='on_output'),
])
def test_same_shapes_as_stock_fpn(kwargs):
    inputs = _inputs()
    stock = FPN(IN_CHANNELS, 16, **kwargs)
    spiking = SpikeFPN(IN_CHANNELS, 16, **kwargs)
    assert list(spiking.state_dict()) == list(stock.state_dict())
    spiking.load_state_dict(stock.state_dict())
    expected = stock(inputs)
    outs = spiking(inputs)
    assert [o.shape for o in outs] == [o.shape for o in expected]
    assert not all(torch.allclose(a, b) for a, b in zip(outs, expected))


def test_same_in_train_and_eval():
    neck = SpikeFPN(IN_CHANNELS, 16, num_outs=5)
    inputs = _inputs()
    train_outs = neck.train()(inputs)
    eval_outs = neck.eval()(inputs)
    for a, b in zip(train_outs, eval_outs):
        assert torch.equal(a, b)


def test_convs_read_spikes_only():
    neck = SpikeFPN(IN_CHANNELS, 16, num_outs=5,
                    add_extra_convs='on_output').eval()
    inputs = _inputs(1)
    expected = neck(inputs)
    with spike_driven(neck, max_spikes=4):
        outs = neck(inputs)
    for a, b in zip(outs, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_lif_rejected():
    with pytest.raises(ValueError, match='MultiSpike'):
        SpikeFPN(IN_CHANNELS, 16, num_outs=4, spike_cfg=dict(type='LIF'))
