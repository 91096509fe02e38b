"""Loading public QKFormer checkpoints (synthetic, public key layout)."""
import json
import os
import re
from typing import Dict, List, Tuple

import pytest
import torch

from mmtpspike.models.backbones import (QKFormer, convert_qkformer_keys,
                                        load_qkformer_checkpoint)

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'data', 'qkformer_public_keys.json')
PUBLISHED_PARAMS_M = {'10-384': 16.47, '10-512': 29.08, '10-768': 64.96}

# hand-checked correspondences between the public module tree and QKFormer
# (one per kind of module), beyond "every tensor lands somewhere"
SEMANTIC_PAIRS = {
    'patch_embed1.proj_conv.weight': 'stages.0.patch_embed.stem_conv.weight',
    'patch_embed1.proj_bn.running_var':
    'stages.0.patch_embed.stem_bn.running_var',
    'patch_embed1.proj1_conv.weight': 'stages.0.patch_embed.down_conv.weight',
    'patch_embed1.proj2_bn.bias': 'stages.0.patch_embed.embed_bn.bias',
    'patch_embed1.proj_res_conv.weight':
    'stages.0.patch_embed.shortcut_conv.weight',
    'patch_embed2.proj3_conv.weight': 'stages.1.patch_embed.down_conv.weight',
    'patch_embed3.proj4_bn.weight': 'stages.2.patch_embed.embed_bn.weight',
    'patch_embed3.proj_res_bn.running_mean':
    'stages.2.patch_embed.shortcut_bn.running_mean',
    'stage1.0.tssa.q_conv.weight': 'stages.0.blocks.0.attn.q_conv.weight',
    'stage2.1.tssa.proj_conv.bias': 'stages.1.blocks.1.attn.proj_conv.bias',
    'stage2.1.mlp.fc1_conv.weight': 'stages.1.blocks.1.mlp.fc1_conv.weight',
    'stage3.0.attn.v_bn.weight': 'stages.2.blocks.0.attn.v.bn.weight',
    'stage3.6.attn.k_conv.weight': 'stages.2.blocks.6.attn.k.conv.weight',
    'stage3.6.attn.proj_conv.bias': 'stages.2.blocks.6.attn.proj.conv.bias',
    'stage3.6.mlp.fc2_bn.running_var':
    'stages.2.blocks.6.mlp.fc2_bn.running_var',
}


def public_layout(arch: str) -> Tuple[Dict[str, list], List[str]]:
    """Key -> shape of the public model, and its classifier keys."""
    with open(FIXTURE) as file:
        fixture = json.load(file)
    return fixture['archs'][arch], fixture['classifier_keys']


def public_state(arch: str = '10-384',
                 seed: int = 0) -> Dict[str, torch.Tensor]:
    """A synthetic checkpoint in the public layout: every tensor distinct."""
    shapes, _ = public_layout(arch)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(len(state))
        else:
            state[key] = torch.rand(shape, generator=generator) + len(state)
    return state


@pytest.mark.parametrize('arch', sorted(PUBLISHED_PARAMS_M))
def test_fixture_describes_the_published_sizes(arch):
    shapes, _ = public_layout(arch)
    count = sum(torch.Size(shape).numel() for key, shape in shapes.items()
                if not key.endswith(('running_mean', 'running_var',
                                     'num_batches_tracked')))
    assert count / 1e6 == pytest.approx(PUBLISHED_PARAMS_M[arch], rel=0.01)


@pytest.mark.parametrize('arch', sorted(PUBLISHED_PARAMS_M))
def test_every_public_tensor_lands_in_its_place(arch):
    state = public_state(arch)
    model = QKFormer(arch=arch)
    report = load_qkformer_checkpoint(model, {'model': state})
    _, classifier = public_layout(arch)
    assert sorted(report['dropped']) == sorted(classifier)
    assert report['missing'] == [] and report['unexpected'] == []
    assert len(report['renamed']) == len(state) - len(classifier)
    loaded = model.state_dict()
    for key, value in state.items():
        if key in classifier:
            continue
        assert torch.equal(loaded[report['renamed'][key]], value), key
    for public_key, our_key in SEMANTIC_PAIRS.items():
        assert report['renamed'][public_key] == our_key
        assert torch.equal(loaded[our_key], state[public_key])


def test_our_own_keys_pass_unchanged():
    model = QKFormer(embed_dims=[16, 32, 64], num_heads=2)
    state = model.state_dict()
    converted, renamed, dropped = convert_qkformer_keys(state)
    assert renamed == {} and dropped == []
    assert list(converted) == list(state)


def legacy_layout(state, prefix=''):
    """``state`` as saved before the SSA was shared (``attn.q_conv``)."""
    return {re.sub(r'^(' + prefix + r'stages\.2\.blocks\.\d+\.attn\.)'
                   r'(q|k|v|proj)\.(conv|bn)\.', r'\1\2_\3.', key): value
            for key, value in state.items()}


def test_checkpoints_saved_before_the_shared_ssa_still_load():
    torch.manual_seed(0)
    model = QKFormer(embed_dims=[16, 32, 64], depths=(1, 1, 2), num_heads=2)
    state = {f'backbone.{key}': value + 1
             for key, value in model.state_dict().items()}
    old = legacy_layout(state, r'backbone\.')
    assert 'backbone.stages.2.blocks.1.attn.proj_bn.bias' in old
    loaded = QKFormer(embed_dims=[16, 32, 64], depths=(1, 1, 2), num_heads=2)
    detector = torch.nn.Module()
    detector.backbone = loaded
    detector.load_state_dict(old)  # strict: every key found
    for key, value in state.items():
        assert torch.equal(detector.state_dict()[key], value), key
    converted, renamed, _ = convert_qkformer_keys(legacy_layout(
        model.state_dict()))
    assert list(converted) == list(model.state_dict())
    assert renamed['stages.2.blocks.0.attn.q_conv.weight'] == \
        'stages.2.blocks.0.attn.q.conv.weight'


def test_mmdet_checkpoint_with_backbone_prefix():
    state = {f'backbone.{k}': v for k, v in public_state().items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    report = load_qkformer_checkpoint(QKFormer(),
                                      {'state_dict': state, 'meta': {}})
    assert report['missing'] == [] and report['unexpected'] == []


def test_stride32_stage_is_reported_missing():
    model = QKFormer(with_stride32=True)
    report = load_qkformer_checkpoint(model, public_state())
    assert report['missing'] and report['unexpected'] == []
    assert all(key.startswith('stages.3.patch_embed.')
               for key in report['missing'])


def test_unexpected_keys_are_reported():
    state = public_state()
    state['stage3.7.attn.q_conv.weight'] = torch.zeros(384, 384, 1)
    del state['stage1.0.mlp.fc1_conv.bias']
    report = load_qkformer_checkpoint(QKFormer(), state)
    assert report['unexpected'] == ['stages.2.blocks.7.attn.q.conv.weight']
    assert report['missing'] == ['stages.0.blocks.0.mlp.fc1_conv.bias']


def test_wrong_size_is_a_clear_error():
    with pytest.raises(ValueError,
                       match=r"(?s)does not fit.*arch='10-768'.*"
                       r'stages\.0\.patch_embed\.stem_conv\.weight'):
        load_qkformer_checkpoint(QKFormer(arch='10-384'),
                                 public_state('10-768'))


def test_pretrained_init_cfg_loads_and_missing_file_is_an_error(tmp_path):
    path = tmp_path / 'qkformer_10_384.pth'
    state = public_state()
    torch.save({'model': state}, str(path))
    model = QKFormer(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert torch.equal(model.stages[2].blocks[3].attn.q.conv.weight,
                       state['stage3.3.attn.q_conv.weight'])
    with pytest.raises(FileNotFoundError, match='QKFormer'):
        load_qkformer_checkpoint(model, str(tmp_path / 'absent.pth'))
