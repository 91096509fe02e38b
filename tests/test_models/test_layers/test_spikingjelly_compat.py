"""The spikingjelly parts on both spikingjelly generations (0.0.0.0.14, 2.x)."""
import importlib.util
import sys

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate

from mmtpspike.models.layers import spikingjelly_compat
from mmtpspike.models.layers.spikingjelly_compat import (
    HAS_MULTI_LEVEL_SPIKES, IntegerLIF, SpikeCountQuantizer, multi_step_lif,
    spike_count_quantizer)

needs_sj2 = pytest.mark.skipif(
    not HAS_MULTI_LEVEL_SPIKES,
    reason='spikingjelly < 2 has no MultiLevelSpikeCount / ILIFNode to '
    'compare the equivalents with')


def _grad(module, x, grad_out):
    x = x.clone().requires_grad_(True)
    out = module(x)
    out.backward(grad_out)
    return out.detach(), x.grad


def test_quantizer_values_and_gradient_window():
    quantizer = SpikeCountQuantizer(4)
    x = torch.tensor(
        [-1., -0., 0., 0.4, 0.5, 1.5, 2.5, 3.9, 4., 4.0001, 9., float('nan')])
    out, grad = _grad(quantizer, x, torch.full_like(x, 3.))
    expected = torch.tensor(
        [0., 0., 0., 0., 0., 2., 2., 4., 4., 4., 4., float('nan')])
    torch.testing.assert_close(out, expected, rtol=0, atol=0, equal_nan=True)
    # straight through on [0, D] with both bounds included, zero outside / NaN
    assert torch.equal(
        grad,
        torch.tensor([0., 3., 3., 3., 3., 3., 3., 3., 3., 0., 0., 0.]))


@needs_sj2
@pytest.mark.parametrize('max_spikes', [1, 2, 4])
def test_quantizer_equals_spikingjelly(max_spikes):
    torch.manual_seed(0)
    x = torch.cat([
        torch.randn(500) * max_spikes + max_spikes / 2,
        torch.arange(-2, 2 * max_spikes + 3) / 2,  # integers, half-integers
        torch.tensor([-0., float(max_spikes), max_spikes + 1e-6])
    ])
    grad_out = torch.randn_like(x)
    ours = _grad(SpikeCountQuantizer(max_spikes), x, grad_out)
    theirs = _grad(surrogate.MultiLevelSpikeCount(max_spikes), x, grad_out)
    assert torch.equal(ours[0], theirs[0])
    assert torch.equal(ours[1], theirs[1])


def test_quantizer_picks_spikingjelly_where_it_exists():
    quantizer = spike_count_quantizer(3)
    if HAS_MULTI_LEVEL_SPIKES:
        assert isinstance(quantizer, surrogate.MultiLevelSpikeCount)
    else:
        assert isinstance(quantizer, SpikeCountQuantizer)
    with pytest.raises(ValueError, match='max_spikes must be >= 1'):
        spike_count_quantizer(0)
    with pytest.raises(TypeError, match='max_spikes must be an integer'):
        spike_count_quantizer(2.5)


@pytest.mark.parametrize('detach_reset, expected_grad',
                         [(True, [1.5, 1., 0., 0.]), (False, [1., 1., 0., 0.])])
def test_integer_lif_hand_computed(detach_reset, expected_grad):
    # tau=2: H = V/2 + X; C = round(clamp(H, 0, 4)); V = H - C
    #   t1: H=1.4 C=1 V=0.4 | t2: H=0.2 C=0 V=0.2 | t3: H=5.4 C=4 V=1.4
    #   t4: H=-0.3 C=0 V=-0.3.  Gradient windows: open, open, shut, shut;
    #   C1 reaches C2 through V1 only when the reset is detached (0.5 * 1).
    lif = IntegerLIF(tau=2., max_spikes=4, detach_reset=detach_reset)
    x = torch.tensor([[1.4], [0.], [5.3], [-1.]], requires_grad=True)
    counts = lif(x)
    assert counts.flatten().tolist() == [1., 0., 4., 0.]
    assert float(lif.v) == pytest.approx(-0.3, abs=1e-6)
    counts.sum().backward()
    torch.testing.assert_close(x.grad.flatten(), torch.tensor(expected_grad))
    lif.reset()
    assert torch.equal(lif(x.detach()), counts.detach())


def test_integer_lif_threshold_and_state_carry_over():
    lif = IntegerLIF(tau=2., v_threshold=0.5, max_spikes=2)
    # H = 0.9 -> H / 0.5 = 1.8 -> C = 2, V = 0.9 - 1.0 = -0.1
    assert lif(torch.tensor([[0.9]])).item() == 2.
    # no reset: H = -0.05 + 0.3 = 0.25 -> 0.5 -> round half to even: 0
    assert lif(torch.tensor([[0.3]])).item() == 0.
    lif.reset()
    # after reset: H = 0.3 -> 0.6 -> 1
    assert lif(torch.tensor([[0.3]])).item() == 1.
    with pytest.raises(ValueError, match='tau > 1'):
        IntegerLIF(tau=1.)
    with pytest.raises(ValueError, match='v_threshold > 0'):
        IntegerLIF(v_threshold=0.)


@needs_sj2
@pytest.mark.parametrize('detach_reset', [True, False])
def test_integer_lif_equals_spikingjelly_ilif(detach_reset):
    torch.manual_seed(0)
    kwargs = dict(tau=2., v_threshold=0.8, detach_reset=detach_reset)
    ours = IntegerLIF(max_spikes=4, **kwargs)
    theirs = neuron.ILIFNode(
        surrogate_function=surrogate.MultiLevelSpikeCount(4),
        step_mode='m',
        **kwargs)
    first = torch.randn(5, 2, 8) * 2 + 1
    second = torch.randn(5, 2, 8) * 2 + 1
    results = []
    for node in (ours, theirs):
        x1 = first.clone().requires_grad_(True)
        x2 = second.clone().requires_grad_(True)
        out1 = node(x1)
        out2 = node(x2)  # starts from the state the first call left
        (out1 * torch.linspace(-1, 2, 8)).sum().backward(retain_graph=True)
        (out2 * torch.linspace(2, -1, 8)).sum().backward()
        results.append((out1.detach(), out2.detach(), x1.grad, x2.grad))
        node.reset()
    for mine, reference in zip(*results):
        torch.testing.assert_close(mine, reference, rtol=0, atol=1e-6)
    assert results[0][0].unique().tolist() != [0.]  # the neuron fires


def test_binary_lif_hand_computed():
    # tau=2, hard reset to 0: H = V + (X - V) / 2; S = H >= 1; V = H (1 - S)
    #   H: 0.75, 1.125, 0.2, 1.6  ->  S: 0, 1, 0, 1
    lif = multi_step_lif(tau=2., v_threshold=1., max_spikes=1,
                         detach_reset=True)
    assert isinstance(lif, neuron.LIFNode)
    spikes = lif(torch.tensor([[1.5], [1.5], [0.4], [3.0]]))
    assert spikes.flatten().tolist() == [0., 1., 0., 1.]


def test_integer_lif_picks_spikingjelly_where_it_exists():
    node = multi_step_lif(tau=2., v_threshold=1., max_spikes=3,
                          detach_reset=True)
    expected = neuron.ILIFNode if HAS_MULTI_LEVEL_SPIKES else IntegerLIF
    assert isinstance(node, expected)


def test_missing_spikingjelly_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'spikingjelly', None)
    monkeypatch.setitem(sys.modules, 'spikingjelly.activation_based', None)
    spec = importlib.util.spec_from_file_location(
        'compat_without_spikingjelly', spikingjelly_compat.__file__)
    with pytest.raises(ImportError, match=r'pip install spikingjelly==0\.0'):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
