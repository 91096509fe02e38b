"""SDTV3 backbone: shapes, strides, params, modes."""
import pytest
import torch

from mmtpspike.models import SDTV3
from mmtpspike.models.layers import spike_driven

PUBLISHED_PARAMS_M = {'t': 2.57, 's': 4.91, 'm': 9.78, 'l': 18.63}


@pytest.mark.parametrize('arch', ['t', 's', 'm', 'l'])
def test_param_count_matches_published(arch):
    params = sum(p.numel() for p in SDTV3(arch=arch).parameters()) / 1e6
    assert params == pytest.approx(PUBLISHED_PARAMS_M[arch], rel=0.01)


@pytest.mark.parametrize('arch', ['t', 's', 'm', 'l'])
@pytest.mark.parametrize('size', [(64, 64), (64, 128), (128, 64), (97, 161)])
def test_all_archs_all_shapes(arch, size):
    model = SDTV3(arch=arch, depths=(1, 1, 1, 1)).eval()
    height, width = size
    with torch.no_grad():
        outs = model(torch.rand(1, 3, height, width))
    assert len(outs) == 4
    for out, channels, stride in zip(outs, model.out_channels,
                                     model.out_strides):
        assert out.shape == (1, channels, -(-height // stride),
                             -(-width // stride))


@pytest.mark.parametrize('stage4_stride,strides', [(1, [4, 8, 16, 16]),
                                                   (2, [4, 8, 16, 32])])
def test_declared_strides_match_tensors(stage4_stride, strides):
    model = SDTV3(arch='t', depths=(1, 1, 1, 1), stage4_stride=stage4_stride,
                  out_stem=True).eval()
    assert model.out_strides == [2] + strides
    assert model.out_channels == [12, 24, 48, 96, 128]
    outs = model(torch.rand(2, 3, 128, 96))
    for out, stride in zip(outs, model.out_strides):
        assert out.shape[-2:] == (128 // stride, 96 // stride)


def test_out_indices_subset():
    model = SDTV3(arch='t', depths=(1, 1, 1, 1), out_indices=(1, 3)).eval()
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == model.out_channels == [48, 128]


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='xl'), 'arch'),
    (dict(stage4_stride=3), 'stage4_stride'),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(embed_dims=[8, 16, 32]), 'embed_dims'),
    (dict(num_timesteps=0), 'num_timesteps'),
    (dict(embed_dims=[8, 16, 36, 40]), 'divisible'),
    (dict(arch='t', frozen_stages=5), r'frozen_stages must be in \[-1, 4\]'),
    (dict(arch='t', frozen_stages=-2), r'frozen_stages must be in \[-1, 4\]'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((KeyError, ValueError), match=match):
        SDTV3(**kwargs)


def test_frozen_stages_get_no_gradient():
    model = SDTV3(arch='t', depths=(1, 1, 1, 1), frozen_stages=1).train()
    sum(o.sum() for o in model(torch.rand(2, 3, 64, 64))).backward()
    for name, param in model.named_parameters():
        frozen = name.startswith(('stem.', 'stages.0.'))
        assert param.requires_grad is not frozen, name
        assert (param.grad is None) is frozen, name
    assert not model.stem.training and not model.stages[0].training
    assert model.stages[1].training


def test_norm_eval():
    model = SDTV3(arch='t', depths=(1, 1, 1, 1), norm_eval=True).train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))


def test_linear_attention_equals_quadratic():
    torch.manual_seed(0)
    linear = SDTV3(arch='t', depths=(1, 1, 2, 1)).eval()
    quadratic = SDTV3(arch='t', depths=(1, 1, 2, 1),
                      attention_order='quadratic').eval()
    quadratic.load_state_dict(linear.state_dict())
    x = torch.randn(2, 3, 96, 64)
    for a, b in zip(linear(x), quadratic(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_spike_driven_unrolling_gives_same_output():
    torch.manual_seed(0)
    model = SDTV3(arch='t', depths=(1, 1, 2, 1)).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model(x)
        with spike_driven(model, max_spikes=4):
            unrolled = model(x)
    for a, b in zip(expected, unrolled):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the context restores the plain convs
    assert all(type(m).__name__ != 'BinarySpikeSynapse'
               for m in model.modules())


def test_lif_multistep_resets_state():
    torch.manual_seed(0)
    model = SDTV3(arch='t', depths=(1, 1, 1, 1), num_timesteps=4,
                  spike_cfg=dict(type='LIF', tau=2.0)).eval()
    x = torch.randn(2, 3, 64, 64)
    first, second = model(x), model(x)
    for a, b in zip(first, second):
        assert a.shape == (2, ) + a.shape[1:] and a.dim() == 4
        assert torch.equal(a, b)


def test_event_frames_input():
    model = SDTV3(arch='t', depths=(1, 1, 1, 1), num_timesteps=2,
                  in_channels=2).eval()
    outs = model(torch.rand(3, 2, 2, 64, 64))
    assert outs[0].shape == (3, 24, 16, 16)
    with pytest.raises(ValueError, match='T=2'):
        model(torch.rand(3, 4, 2, 64, 64))


def test_lif_spike_driven_binary():
    model = SDTV3(arch='t', depths=(1, 1, 1, 1), num_timesteps=2,
                  spike_cfg=dict(type='LIF')).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        with spike_driven(model, max_spikes=1):
            unrolled = model(x)
    for a, b in zip(expected, unrolled):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fuse_matches_eval_mode_and_blocks_training():
    torch.manual_seed(0)
    model = SDTV3(arch='t', depths=(1, 1, 2, 1),
                  pruning=dict(keep_ratios=0.6)).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.2)
            module.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        expected = model(x)
        model.fuse()
        fused = model(x.contiguous(memory_format=torch.channels_last))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in model.modules())
    for a, b in zip(expected, fused):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match='fuse'):
        model.train()
