"""Loading official SDT-V3 checkpoints (synthetic, official key layout)."""
import re

import pytest
import torch

from mmtpspike.models import SDTV3
from mmtpspike.models.backbones import load_sdtv3_checkpoint

OFFICIAL_PREFIXES = [
    ('stem.downsample.', 'downsample1_1.'),
    ('stem.blocks.0.', 'ConvBlock1_1.0.'),
    ('stages.0.downsample.', 'downsample1_2.'),
    ('stages.0.blocks.0.', 'ConvBlock1_2.0.'),
    ('stages.1.downsample.', 'downsample2.'),
    ('stages.1.blocks.0.', 'ConvBlock2_1.0.'),
    ('stages.1.blocks.1.', 'ConvBlock2_2.0.'),
    ('stages.2.downsample.', 'downsample3.'),
    ('stages.3.downsample.', 'downsample4.'),
]


def official_key(key: str) -> str:
    """Name of an SDTV3 parameter in the official SDT-V3 code."""
    match = re.match(r'stages\.([23])\.blocks\.(\d+)\.', key)
    if match:
        rest = key[match.end():].replace('sep_conv.', 'conv.', 1)
        return f'block{int(match.group(1)) + 1}.{match.group(2)}.{rest}'
    for ours, theirs in OFFICIAL_PREFIXES:
        if key.startswith(ours):
            return theirs + key[len(ours):].replace('sep_conv.', 'Conv.', 1)
    raise AssertionError(key)


def official_state(model: SDTV3, num_classes: int = 10) -> dict:
    state = {official_key(k): v.clone() for k, v in model.state_dict().items()}
    state['head.weight'] = torch.rand(num_classes, model.embed_dims[-1])
    state['head.bias'] = torch.rand(num_classes)
    return state


def randomised(model):
    with torch.no_grad():
        for param in model.parameters():
            param.normal_()
    return model


def test_official_layout_has_expected_names():
    state = official_state(SDTV3(arch='t'))
    for key in ('downsample1_1.encode_conv.weight',
                'ConvBlock1_2.0.Conv.pwconv1.0.weight',
                'ConvBlock2_2.0.conv2.weight',
                'block3.0.attn.q_conv.0.weight', 'block3.5.mlp.fc1_conv.weight',
                'block4.1.conv.dwconv.0.weight', 'head.weight'):
        assert key in state, key


@pytest.mark.parametrize('layout', ['bare', 'model', 'state_dict'])
def test_load_layouts(tmp_path, layout):
    source = randomised(SDTV3(arch='t'))
    state = official_state(source)
    if layout == 'model':
        state = dict(model=state, epoch=3)
    elif layout == 'state_dict':
        state = dict(state_dict={f'backbone.{k}': v for k, v in state.items()})
    path = str(tmp_path / 'ckpt.pth')
    torch.save(state, path)
    target = SDTV3(arch='t', init_cfg=dict(type='Pretrained', checkpoint=path))
    target.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_report_lists_missing_unexpected_and_dropped():
    source = SDTV3(arch='t')
    state = official_state(source)
    del state['block3.0.attn.q_conv.0.weight']
    state['block3.0.attn.extra.weight'] = torch.zeros(1)
    report = load_sdtv3_checkpoint(SDTV3(arch='t'), state)
    assert report['dropped'] == ['head.weight', 'head.bias']
    assert report['missing'] == ['stages.2.blocks.0.attn.q_conv.0.weight']
    assert report['unexpected'] == ['stages.2.blocks.0.attn.extra.weight']


def test_wrong_width_fails_clearly():
    state = official_state(SDTV3(arch='s'))
    with pytest.raises(ValueError) as err:
        load_sdtv3_checkpoint(SDTV3(arch='t'), state)
    message = str(err.value)
    assert "arch='s'" in message
    assert 'stem.downsample.encode_conv.weight' in message


def test_missing_file_warns_and_trains_from_scratch(tmp_path):
    model = SDTV3(arch='t', init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'nope.pth')))
    with pytest.warns(UserWarning, match='from scratch'):
        model.init_weights()
