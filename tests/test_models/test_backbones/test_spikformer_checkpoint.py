"""Loading public Spikformer checkpoints (synthetic, public key layout)."""
import json
import os
from typing import Dict, List, Tuple

import pytest
import torch

from mmtpspike.models.backbones import Spikformer
from mmtpspike.models.backbones.spikformer_checkpoint import (
    convert_public_keys, load_spikformer_checkpoint, rename_public_key)

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'data', 'spikformer_public_keys.json')
SIZES = {'2-64': dict(embed_dims=64, depth=2, num_heads=8),
         '8-384': dict(arch='8-384')}
LAYER_NORM_KEYS = ('norm1.weight', 'norm1.bias', 'norm2.weight',
                   'norm2.bias')

# hand-checked correspondences, one per kind of module
SEMANTIC_PAIRS = {
    'patch_embed.proj_conv.weight': 'patch_embed.proj.0.conv.weight',
    'patch_embed.proj_bn.running_var': 'patch_embed.proj.0.bn.running_var',
    'patch_embed.proj_conv3.weight': 'patch_embed.proj.3.conv.weight',
    'patch_embed.proj_bn2.bias': 'patch_embed.proj.2.bn.bias',
    'patch_embed.rpe_conv.weight': 'patch_embed.rpe.conv.weight',
    'patch_embed.rpe_bn.weight': 'patch_embed.rpe.bn.weight',
    'block.0.attn.q_conv.weight': 'blocks.0.attn.q.conv.weight',
    'block.1.attn.k_bn.running_mean': 'blocks.1.attn.k.bn.running_mean',
    'block.1.attn.v_bn.weight': 'blocks.1.attn.v.bn.weight',
    'block.0.attn.proj_conv.bias': 'blocks.0.attn.proj.conv.bias',
    'block.1.mlp.fc1_conv.bias': 'blocks.1.mlp.fc1.conv.bias',
    'block.1.mlp.fc2_bn.weight': 'blocks.1.mlp.fc2.bn.weight',
}


def public_layout(size: str) -> Tuple[Dict[str, list], List[str]]:
    """Key -> shape of the public model, and its classifier keys."""
    with open(FIXTURE) as file:
        fixture = json.load(file)
    return fixture['archs'][size], fixture['classifier_keys']


def public_state(size: str = '2-64',
                 seed: int = 0) -> Dict[str, torch.Tensor]:
    """A synthetic checkpoint in the public layout: every tensor distinct."""
    shapes, _ = public_layout(size)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(len(state))
        else:
            state[key] = torch.rand(shape, generator=generator) + len(state)
    return state


def test_fixture_is_the_published_8_384():
    shapes, _ = public_layout('8-384')
    count = sum(torch.Size(shape).numel() for key, shape in shapes.items()
                if not key.endswith(('running_mean', 'running_var',
                                     'num_batches_tracked')))
    assert count / 1e6 == pytest.approx(16.81, rel=0.01)


def test_rename_table():
    for public, ours in SEMANTIC_PAIRS.items():
        assert rename_public_key(public) == ours
    assert rename_public_key('blocks.0.attn.q.conv.weight') == \
        'blocks.0.attn.q.conv.weight'


@pytest.mark.parametrize('size', ['2-64', '8-384'])
def test_every_public_tensor_lands_in_its_place(size):
    state = public_state(size)
    model = Spikformer(**SIZES[size])
    report = load_spikformer_checkpoint(model, state)
    shapes, classifier = public_layout(size)
    unused = classifier + [k for k in shapes if k.endswith(LAYER_NORM_KEYS)]
    assert sorted(report['dropped']) == sorted(unused)
    assert report['missing'] == [] and report['unexpected'] == []
    assert len(report['renamed']) == len(shapes) - len(unused)
    assert sorted(report['reshaped']) == sorted(
        f'blocks.{i}.mlp.{fc}.conv.weight' for i in range(model.depth)
        for fc in ('fc1', 'fc2'))
    loaded = model.state_dict()
    # a bijection: each used public tensor equals exactly one of ours
    owners = {}
    for key, value in state.items():
        if key in unused or key.endswith('num_batches_tracked'):
            continue
        matches = [name for name, tensor in loaded.items()
                   if tensor.numel() == value.numel() and
                   torch.equal(tensor.flatten(), value.flatten())]
        assert len(matches) == 1, (key, matches)
        owners[key] = matches[0]
    assert len(set(owners.values())) == len(owners)
    assert len(owners) == sum(1 for k in loaded
                              if not k.endswith('num_batches_tracked'))
    for public, ours in SEMANTIC_PAIRS.items():
        assert owners[public] == ours


def test_mlp_kernels_are_flattened_not_transposed():
    state = public_state()
    converted = convert_public_keys(state).state_dict
    public = state['block.0.mlp.fc1_conv.weight']
    ours = converted['blocks.0.mlp.fc1.conv.weight']
    assert public.shape == (256, 64, 1, 1) and ours.shape == (256, 64, 1)
    assert torch.equal(ours[..., 0], public[..., 0, 0])


@pytest.mark.parametrize('layout', ['bare', 'timm', 'ddp', 'mmdet'])
def test_load_layouts(tmp_path, layout):
    state = public_state()
    saved = {
        'bare': state,
        'timm': dict(state_dict=state, epoch=299, arch='spikformer'),
        'ddp': dict(state_dict={f'module.{k}': v for k, v in state.items()}),
        'mmdet': dict(state_dict={
            f'backbone.{k}': v for k, v in state.items()}),
    }[layout]
    path = str(tmp_path / 'ckpt.pth.tar')
    torch.save(saved, path)
    target = Spikformer(**SIZES['2-64'],
                        init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    for public, ours in SEMANTIC_PAIRS.items():
        assert torch.equal(target.state_dict()[ours].flatten(),
                           state[public].flatten()), public


def test_own_checkpoints_load_unchanged():
    source = Spikformer(**SIZES['2-64'])
    report = load_spikformer_checkpoint(Spikformer(**SIZES['2-64']),
                                        source.state_dict())
    assert report['renamed'] == report['reshaped'] == report['dropped'] == []
    assert report['missing'] == report['unexpected'] == []


def test_report_lists_missing_unexpected_and_dropped():
    state = public_state()
    del state['block.0.attn.q_conv.weight']
    state['block.0.attn.extra_conv.weight'] = torch.zeros(1)
    report = load_spikformer_checkpoint(Spikformer(**SIZES['2-64']), state)
    assert report['missing'] == ['blocks.0.attn.q.conv.weight']
    assert report['unexpected'] == ['blocks.0.attn.extra_conv.weight']
    assert 'head.weight' in report['dropped']
    assert 'block.1.norm2.bias' in report['dropped']


def test_deeper_checkpoint_reports_unexpected_blocks():
    report = load_spikformer_checkpoint(
        Spikformer(embed_dims=64, depth=1, num_heads=8), public_state())
    assert report['missing'] == []
    assert report['unexpected'] and all(
        k.startswith('blocks.1.') for k in report['unexpected'])


def test_wrong_width_fails_clearly():
    with pytest.raises(ValueError) as err:
        load_spikformer_checkpoint(Spikformer(embed_dims=32, depth=2,
                                              num_heads=8), public_state())
    message = str(err.value)
    assert 'embed_dims=64, depth=2' in message
    assert ('patch_embed.proj.0.conv.weight: checkpoint (8, 3, 3, 3) vs '
            'model (4, 3, 3, 3)') in message


def test_missing_file_is_a_clear_error(tmp_path):
    model = Spikformer(**SIZES['2-64'], init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.raises(FileNotFoundError, match='init_cfg=None'):
        model.init_weights()
    with pytest.raises(ValueError, match="needs a 'checkpoint'"):
        Spikformer(**SIZES['2-64'],
                   init_cfg=dict(type='Pretrained')).init_weights()
