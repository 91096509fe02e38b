"""SimplePyramidAdapter: one stride-16 map -> a pyramid for stock heads."""
import pytest
import torch
from mmengine.registry import init_default_scope

from mmtpspike.models import SimplePyramidAdapter


def test_levels_have_the_scaled_sizes_and_out_channels():
    neck = SimplePyramidAdapter(32, 12, scale_factors=(4, 2, 1, 0.5, 0.25))
    outs = neck.eval()((torch.rand(2, 8, 3, 3), torch.rand(2, 32, 5, 7)))
    assert [tuple(o.shape) for o in outs] == [
        (2, 12, 20, 28), (2, 12, 10, 14), (2, 12, 5, 7), (2, 12, 3, 4),
        (2, 12, 2, 2)]


def test_up_sampling_halves_channels_per_octave():
    neck = SimplePyramidAdapter(32, 12)
    deconvs = [m for m in neck.resamplers[0].modules()
               if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(d.in_channels, d.out_channels) for d in deconvs] == [(32, 16),
                                                                  (16, 8)]
    assert neck.projections[0][1][0].in_channels == 8


def conv_inputs(neck, x):
    """Inputs of every conv / deconv of ``neck`` on ``x``."""
    seen = []
    for module in neck.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.register_forward_pre_hook(
                lambda m, args: seen.append(args[0].clone()))
    neck((x, ))
    return seen


def on_spike_lattice(x, max_spikes=4):
    return bool(x.min() >= 0) and torch.equal(x * max_spikes,
                                              (x * max_spikes).round())


def test_every_conv_reads_spikes_unless_float():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 4, 4) * 3
    seen = conv_inputs(SimplePyramidAdapter(8, 4).eval(), x)
    assert len(seen) == 4 + 2 + 1  # projections + deconvs of scales 4, 2
    assert all(on_spike_lattice(s) for s in seen)
    seen = conv_inputs(SimplePyramidAdapter(8, 4, spike_cfg=None).eval(), x)
    assert len(seen) == 7 and not any(on_spike_lattice(s) for s in seen)


@pytest.mark.parametrize('scales', [(3, 1), (0, ), ()])
def test_scale_factors_must_be_powers_of_two(scales):
    with pytest.raises(ValueError, match='scale_factors'):
        SimplePyramidAdapter(8, 4, scale_factors=scales)


def test_chains_before_a_stock_fpn_from_a_config_list():
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    neck = MODELS.build([
        dict(type='SimplePyramidAdapter', in_channels=16, out_channels=8),
        dict(type='FPN', in_channels=[8] * 4, out_channels=8, num_outs=5)
    ]).eval()
    outs = neck((torch.rand(1, 16, 8, 12), ))
    assert [o.shape[-2:] for o in outs] == [(32, 48), (16, 24), (8, 12),
                                            (4, 6), (2, 3)]
