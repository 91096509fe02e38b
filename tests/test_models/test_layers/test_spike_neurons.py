"""Multi-spike / LIF neurons and binary unrolling."""
import pytest
import torch

from mmtpspike.models.layers import (BinarySpikeSynapse, MultiSpike,
                                     MultiStepLIF, build_spike_neuron,
                                     unroll_spikes)


def test_multispike_values_and_gradient():
    neuron = MultiSpike(max_spikes=4)
    x = torch.tensor([-1., 0.1, 0.6, 1.4, 2.5, 3.9, 4.0, 7.0],
                     requires_grad=True)
    out = neuron(x)
    expected = torch.tensor([0., 0., 1., 1., 2., 4., 4., 4.]) / 4
    assert torch.equal(out, expected)
    out.sum().backward()
    # straight-through inside [0, D], zero outside
    assert torch.equal(x.grad / 0.25,
                       torch.tensor([0., 1., 1., 1., 1., 1., 1., 0.]))


def test_multispike_same_in_train_and_eval():
    neuron = MultiSpike(3)
    x = torch.randn(100) * 3
    assert torch.equal(neuron.train()(x), neuron.eval()(x))


def test_unroll_spikes_mean_equals_counts():
    spikes = torch.tensor([[0., 0.25, 0.5, 1.0]])
    planes = unroll_spikes(spikes, 4)
    assert planes.shape == (4, 1, 4)
    assert set(planes.unique().tolist()) <= {0., 1.}
    assert torch.equal(planes.mean(0), spikes)
    with pytest.raises(ValueError, match='spike tensor'):
        unroll_spikes(torch.tensor([0.3]), 4)


def test_binary_synapse_equals_conv():
    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    spikes = MultiSpike(4)(torch.rand(2, 3, 8, 8) * 5)
    torch.testing.assert_close(
        BinarySpikeSynapse(conv, 4)(spikes), conv(spikes))


def test_lif_timesteps_and_reset():
    lif = build_spike_neuron(dict(type='LIF', tau=2.0), num_timesteps=3)
    assert isinstance(lif, MultiStepLIF)
    x = torch.rand(6, 4) * 2
    out = lif(x)
    assert set(out.unique().tolist()) <= {0., 1.}
    assert torch.equal(out, lif(x))
    with pytest.raises(ValueError, match='divisible'):
        lif(torch.rand(4, 4))


def test_integer_lif_neuron_hand_computed():
    # I-LIF, D=4, tau=2, two neurons over T=2 (detached soft reset):
    #   t1: H = 1.4 -> 1 (V 0.4), H = 6 -> 4 (V 2, outside the gradient window)
    #   t2: H = 0.2 -> 0, H = 1.0 -> 1
    lif = build_spike_neuron(
        dict(type='LIF', tau=2.0, max_spikes=4), num_timesteps=2)
    x = torch.tensor([[1.4, 6.0], [0.0, 0.0]], requires_grad=True)
    out = lif(x)
    assert torch.equal(out, torch.tensor([[1., 4.], [0., 1.]]) / 4)
    assert torch.equal(lif(x), out)  # state reset between calls
    out.sum().backward()
    # d out / d x: own step 1/4 where the window is open, plus 0.5/4 carried
    # into t2 through the membrane
    torch.testing.assert_close(
        x.grad, torch.tensor([[0.375, 0.125], [0.25, 0.25]]))


def test_unknown_neuron():
    with pytest.raises(KeyError, match='spike_cfg.type'):
        build_spike_neuron(dict(type='Izhikevich'))
