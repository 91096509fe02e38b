"""Stopped-token shares inside ground-truth objects."""
import pytest
import torch

from mmtpspike.analysis.object_tokens import (ObjectTokenTally, size_group,
                                              token_coverage)
from mmtpspike.models.pruning import TokenRecord
from tool_runner import run_tool


def test_size_groups_follow_coco():
    assert size_group(0) == 'small' and size_group(32**2 - 1) == 'small'
    assert size_group(32**2) == 'medium' and size_group(96**2) == 'large'


def test_coverage_of_token_patches():
    masks = torch.zeros(1, 32, 48, dtype=torch.bool)
    masks[0, :16, :24] = True  # exactly token (0, 0) and half of (0, 1)
    coverage = token_coverage(masks, (2, 3))
    assert coverage[0].tolist() == [[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]]


def test_tally_by_hand():
    kept = torch.tensor([[[True, False, False], [True, True, False]]])
    valid = torch.tensor([[[True, True, True], [True, True, False]]])
    record = TokenRecord('b0', 2, 0.5, kept=kept, valid=valid)
    masks = torch.zeros(2, 32, 48, dtype=torch.bool)
    masks[0, :16, :32] = True  # small object over tokens (0, 0), (0, 1)
    masks[1, 16:, :16] = True  # large object over token (1, 0)
    tally = ObjectTokenTally()
    tally.add_image([record], 0, masks, [100, 10000])
    shares = tally.shares()['b0']
    assert shares['small'] == 0.5  # (0, 1) stopped, (0, 0) kept
    assert shares['large'] == 0.0
    assert shares['medium'] != shares['medium']  # no medium object: NaN
    # background: (0, 2) stopped, (1, 1) kept; (1, 2) is padding
    assert shares['background'] == 0.5
    assert 'b0 | 50.0 % | - | 0.0 % | 50.0 %' in tally.table()


@pytest.mark.parametrize('config', ['configs/det/sdtv3_tp_coco_demo.py',
                                    'configs/seg/sdtv3_tp_ade20k_demo.py'])
def test_tool_on_the_demo_sets(config, tmp_path):
    out = run_tool('tools/analysis/object_tokens.py', config, 'none',
                   '--num-images', '2', '--keep', '0.5',
                   '--out', str(tmp_path / 'shares.json'))
    assert '| stages.2.blocks.0 |' in out and 'objects:' in out
    assert (tmp_path / 'shares.json').is_file()
