"""Count-based, padding-aware selection."""
import math

import pytest
import torch

from mmtpspike.models.pruning import (index_to_mask, keep_counts,
                                      select_tokens, valid_token_mask)


@pytest.mark.parametrize('keep,num,expected', [(0.78, 100, 78), (0.56, 25, 14),
                                               (1.0, 7, 7), (0.01, 5, 1),
                                               (0.5, 77, 39)])
def test_keep_counts(keep, num, expected):
    assert keep_counts(keep, torch.tensor([num])).item() == expected


def test_select_picks_top_scores_and_pads_rows():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]])
    candidates = torch.tensor([[True] * 4, [True, True, False, False]])
    index, slot_mask = select_tokens(scores, torch.tensor([2, 1]), candidates)
    assert index.tolist() == [[1, 3], [0, 4]]
    assert slot_mask.tolist() == [[True, True], [True, False]]
    assert index_to_mask(index, 4).tolist() == [[False, True, False, True],
                                                [True, False, False, False]]


def test_padding_never_beats_valid_tokens():
    scores = torch.tensor([[0.1, 0.2, 9.0, 9.0]])
    valid = torch.tensor([[True, True, False, False]])
    index, _ = select_tokens(scores, torch.tensor([1]), valid)
    assert index.tolist() == [[1]]


@pytest.mark.parametrize('img_shape,stride', [((97, 161), 16), ((64, 30), 8),
                                              ((33, 33), 4)])
def test_valid_token_mask(img_shape, stride):
    height, width = 13, 21
    mask = valid_token_mask([img_shape], stride, height, width,
                            torch.device('cpu')).view(height, width)
    rows = min(math.ceil(img_shape[0] / stride), height)
    cols = min(math.ceil(img_shape[1] / stride), width)
    assert mask.sum() == rows * cols
    assert mask[:rows, :cols].all()
