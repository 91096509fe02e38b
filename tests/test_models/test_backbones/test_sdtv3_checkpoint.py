"""Loading official SDT-V3 checkpoints (synthetic, official key layout)."""
import json
import os
from typing import Dict, List, Tuple

import pytest
import torch

from mmtpspike.models import SDTV3
from mmtpspike.models.backbones import load_sdtv3_checkpoint

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'data', 'sdtv3_official_keys.json')

# a few hand-checked correspondences between the public module tree and
# SDTV3 (one per kind of module), beyond "every tensor lands somewhere"
SEMANTIC_PAIRS = {
    'downsample1_1.encode_conv.weight': 'stem.downsample.encode_conv.weight',
    'ConvBlock1_1.0.Conv.pwconv1.0.weight':
    'stem.blocks.0.sep_conv.pwconv1.0.weight',
    'downsample1_2.encode_bn.running_var':
    'stages.0.downsample.encode_bn.running_var',
    'ConvBlock2_2.0.conv2.weight': 'stages.1.blocks.1.conv2.weight',
    'downsample3.encode_conv.bias': 'stages.2.downsample.encode_conv.bias',
    'block3.0.attn.q_conv.0.weight': 'stages.2.blocks.0.attn.q_conv.0.weight',
    'block3.5.mlp.fc1_conv.weight': 'stages.2.blocks.5.mlp.fc1_conv.weight',
    'block4.1.conv.dwconv.1.weight':
    'stages.3.blocks.1.sep_conv.dwconv.1.weight',
    'block4.1.attn.proj_conv.1.bias':
    'stages.3.blocks.1.attn.proj_conv.1.bias',
}


def official_layout(arch: str) -> Tuple[Dict[str, list], List[str]]:
    """Key -> shape of the public model, and its classifier keys."""
    with open(FIXTURE) as file:
        fixture = json.load(file)
    return fixture['archs'][arch], fixture['classifier_keys']


def official_state(arch: str = 't', seed: int = 0) -> Dict[str, torch.Tensor]:
    """A synthetic checkpoint in the public layout: every tensor distinct."""
    shapes, _ = official_layout(arch)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(len(state))
        else:
            state[key] = torch.rand(shape, generator=generator) + len(state)
    return state


def test_fixture_describes_the_published_sizes():
    for arch, params in (('t', 2.57), ('l', 18.63)):
        shapes, classifier = official_layout(arch)
        count = sum(torch.Size(shape).numel() for key, shape in shapes.items()
                    if key not in classifier and
                    not key.endswith(('running_mean', 'running_var',
                                      'num_batches_tracked')))
        assert count / 1e6 == pytest.approx(params, rel=0.01)


@pytest.mark.parametrize('arch', ['t', 'l'])
def test_every_public_tensor_lands_in_its_place(arch):
    state = official_state(arch)
    model = SDTV3(arch=arch)
    report = load_sdtv3_checkpoint(model, state)
    _, classifier = official_layout(arch)
    assert sorted(report['dropped']) == sorted(classifier)
    assert report['missing'] == [] and report['unexpected'] == []
    loaded = model.state_dict()
    # a bijection: each public tensor equals exactly one model tensor
    owners = {}
    for key, value in state.items():
        if key in classifier or key.endswith('num_batches_tracked'):
            continue
        matches = [name for name, tensor in loaded.items()
                   if tensor.shape == value.shape and torch.equal(tensor,
                                                                  value)]
        assert len(matches) == 1, (key, matches)
        owners[key] = matches[0]
    assert len(set(owners.values())) == len(owners)
    for public, ours in SEMANTIC_PAIRS.items():
        assert owners[public] == ours


@pytest.mark.parametrize('layout', ['bare', 'model', 'state_dict'])
def test_load_layouts(tmp_path, layout):
    state = official_state('t')
    if layout == 'model':
        saved = dict(model=state, epoch=3)
    elif layout == 'state_dict':
        saved = dict(state_dict={f'backbone.{k}': v for k, v in state.items()})
    else:
        saved = state
    path = str(tmp_path / 'ckpt.pth')
    torch.save(saved, path)
    target = SDTV3(arch='t', init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    for public, ours in SEMANTIC_PAIRS.items():
        assert torch.equal(target.state_dict()[ours], state[public]), public


def test_report_lists_missing_unexpected_and_dropped():
    state = official_state('t')
    del state['block3.0.attn.q_conv.0.weight']
    state['block3.0.attn.extra.weight'] = torch.zeros(1)
    report = load_sdtv3_checkpoint(SDTV3(arch='t'), state)
    assert report['dropped'] == ['head.weight', 'head.bias']
    assert report['missing'] == ['stages.2.blocks.0.attn.q_conv.0.weight']
    assert report['unexpected'] == ['stages.2.blocks.0.attn.extra.weight']


def test_wrong_width_fails_clearly():
    state = {k: v for k, v in official_state('l').items()}
    with pytest.raises(ValueError) as err:
        load_sdtv3_checkpoint(SDTV3(arch='t'), state)
    message = str(err.value)
    assert "arch='l'" in message
    assert 'stem.downsample.encode_conv.weight' in message


def test_missing_pretrained_checkpoint_is_an_error(tmp_path):
    path = str(tmp_path / 'nope.pth')
    model = SDTV3(arch='t', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    assert path in str(err.value) and 'init_cfg=None' in str(err.value)
