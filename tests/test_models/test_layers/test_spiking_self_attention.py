"""Spikformer's SSA, shared by Spikformer and QKFormer's last stage."""
import pytest
import torch
from active_network import activate

from mmtpspike.models.backbones import QKFormer, Spikformer
from mmtpspike.models.layers.spiking_self_attention import \
    SpikingSelfAttention

LIF = dict(type='LIF')


def test_both_backbones_use_the_one_attention():
    spikformer = Spikformer(embed_dims=32, depth=1, num_heads=4,
                            num_timesteps=2, attn_scale=0.5)
    qkformer = QKFormer(embed_dims=[16, 32, 64], depths=(1, 1, 1),
                        num_heads=2, num_timesteps=2, attn_scale=0.5)
    for attn in (spikformer.blocks[0].attn, qkformer.stages[2].blocks[0].attn):
        assert type(attn) is SpikingSelfAttention and attn.attn_scale == 0.5


def test_scale_multiplies_the_attention_map():
    torch.manual_seed(0)
    attn = SpikingSelfAttention(8, 2, LIF, LIF, dict(type='BN'),
                                attn_scale=1.0, num_timesteps=2)
    tokens = (torch.rand(4, 8, 6) > 0.5).float()
    activate(attn, tokens)
    maps = []
    attn.attn_spike.register_forward_hook(
        lambda module, inputs, output: maps.append(inputs[0]))
    with torch.no_grad():
        attn(tokens)
        attn.attn_scale = 0.25
        attn(tokens)
    assert maps[0].abs().sum() > 0
    assert torch.equal(maps[1], maps[0] * 0.25)


@pytest.mark.parametrize('backbone,kwargs', [
    (Spikformer, dict(embed_dims=32, depth=1, num_heads=4)),
    (QKFormer, dict(embed_dims=[16, 32, 64], depths=(1, 1, 1), num_heads=2))])
@pytest.mark.parametrize('scale', [0, -0.125])
def test_scale_must_be_positive(backbone, kwargs, scale):
    with pytest.raises(ValueError, match=r'attn_scale must be > 0'):
        backbone(**kwargs, attn_scale=scale)
