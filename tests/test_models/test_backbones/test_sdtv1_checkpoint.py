"""Loading public SDT-V1 checkpoints (synthetic, public key layout)."""
import json
import os
from typing import Dict, List, Tuple

import pytest
import torch

from mmtpspike.models.backbones import (SDTV1, convert_sdtv1_keys,
                                        load_sdtv1_checkpoint)

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'data', 'sdtv1_public_keys.json')
# fixture size -> SDTV1 arguments
SIZES = {'8-384': dict(arch='8-384'), '2-32': dict(embed_dims=32, depth=2)}
# one hand-checked correspondence per kind of module
SEMANTIC_PAIRS = {
    'patch_embed.proj_conv.weight': 'patch_embed.proj.0.conv.weight',
    'patch_embed.proj_bn.running_var': 'patch_embed.proj.0.bn.running_var',
    'patch_embed.proj_conv2.weight': 'patch_embed.proj.2.conv.weight',
    'patch_embed.proj_bn3.bias': 'patch_embed.proj.3.bn.bias',
    'patch_embed.rpe_conv.weight': 'patch_embed.rpe_conv.weight',
    'block.0.attn.q_conv.weight': 'blocks.0.attn.q_conv.weight',
    'block.1.attn.v_bn.running_mean': 'blocks.1.attn.v_bn.running_mean',
    'block.1.attn.proj_conv.bias': 'blocks.1.attn.proj_conv.bias',
    'block.0.mlp.fc2_bn.weight': 'blocks.0.mlp.fc2_bn.weight',
}


def public_layout(size: str) -> Tuple[Dict[str, list], List[str]]:
    """Key -> shape of the public model, and its classifier keys."""
    with open(FIXTURE) as file:
        fixture = json.load(file)
    return fixture['archs'][size], fixture['classifier_keys']


def public_state(size: str = '2-32') -> Dict[str, torch.Tensor]:
    """A synthetic checkpoint in the public layout: every tensor distinct."""
    shapes, _ = public_layout(size)
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(len(state))
        else:
            state[key] = torch.rand(shape, generator=generator) + len(state)
    return state


def test_fixture_describes_the_published_size():
    shapes, _ = public_layout('8-384')
    count = sum(torch.Size(shape).numel() for key, shape in shapes.items()
                if not key.endswith(('running_mean', 'running_var',
                                     'num_batches_tracked')))
    assert count / 1e6 == pytest.approx(16.81, rel=0.01)


@pytest.mark.parametrize('size', ['2-32', '8-384'])
def test_public_checkpoint_loads_without_missing_keys(size):
    model = SDTV1(**SIZES[size])
    report = load_sdtv1_checkpoint(model, public_state(size))
    _, classifier = public_layout(size)
    unused = [f'block.{i}.attn.talking_heads.weight'
              for i in range(model.depth)]
    assert sorted(report['dropped']) == sorted(classifier + unused)
    assert report['missing'] == [] and report['unexpected'] == []
    for public, ours in SEMANTIC_PAIRS.items():
        assert report['renamed'].get(public, public) == ours


def test_every_public_tensor_lands_in_its_place():
    state = public_state()
    model = SDTV1(**SIZES['2-32'])
    report = load_sdtv1_checkpoint(model, state)
    loaded = model.state_dict()
    owners = {}
    for key, value in state.items():
        if key in report['dropped'] or key.endswith('num_batches_tracked'):
            continue
        matches = [name for name, tensor in loaded.items()
                   if tensor.shape == value.shape and torch.equal(tensor,
                                                                  value)]
        assert len(matches) == 1, (key, matches)
        owners[key] = matches[0]
    assert len(set(owners.values())) == len(owners)
    for public, ours in SEMANTIC_PAIRS.items():
        assert owners[public] == ours


def test_converted_keys_pass_unchanged():
    converted, _, _ = convert_sdtv1_keys(public_state())
    again, renamed, dropped = convert_sdtv1_keys(converted)
    assert again.keys() == converted.keys()
    assert renamed == {} and dropped == []


@pytest.mark.parametrize('layout', ['bare', 'model', 'state_dict'])
def test_load_layouts_through_init_cfg(tmp_path, layout):
    state = public_state()
    if layout == 'model':
        saved = dict(model=state, epoch=3)
    elif layout == 'state_dict':
        saved = dict(state_dict={f'backbone.{k}': v for k, v in state.items()})
    else:
        saved = state
    path = str(tmp_path / 'ckpt.pth')
    torch.save(saved, path)
    target = SDTV1(**SIZES['2-32'],
                   init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    for public, ours in SEMANTIC_PAIRS.items():
        assert torch.equal(target.state_dict()[ours], state[public]), public


def test_report_lists_missing_and_unexpected():
    state = public_state()
    del state['block.0.attn.q_conv.weight']
    state['block.0.attn.extra.weight'] = torch.zeros(1)
    report = load_sdtv1_checkpoint(SDTV1(**SIZES['2-32']), state)
    assert report['missing'] == ['blocks.0.attn.q_conv.weight']
    assert report['unexpected'] == ['blocks.0.attn.extra.weight']


def test_deeper_checkpoint_reports_the_extra_blocks():
    report = load_sdtv1_checkpoint(SDTV1(embed_dims=32, depth=1),
                                   public_state())
    assert report['missing'] == []
    assert report['unexpected'] and all(
        key.startswith('blocks.1.') for key in report['unexpected'])


def test_wrong_width_fails_clearly():
    with pytest.raises(ValueError) as err:
        load_sdtv1_checkpoint(SDTV1(embed_dims=64, depth=8),
                              public_state('8-384'))
    message = str(err.value)
    assert "arch='8-384'" in message and 'embed_dims=64' in message
    assert 'patch_embed.proj.0.conv.weight: checkpoint (48, 3, 3, 3) vs ' \
        'model (8, 3, 3, 3)' in message


def test_missing_file_names_the_fix(tmp_path):
    model = SDTV1(**SIZES['2-32'], init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'absent.pth')))
    with pytest.raises(FileNotFoundError, match='init_cfg=None'):
        model.init_weights()
