"""Protected tokens: never stopped, not counted in the retention ratio."""
import math

import pytest
import torch
import torch.nn as nn

from mmtpspike.models.layers.token_block import TokenBlock
from mmtpspike.models.pruning import (PruningLayout, TokenPruner,
                                      protect_tokens, select_tokens)


class Marker(nn.Module):
    """A branch that adds one to every token it runs on."""

    def forward(self, tokens, *unused):
        return torch.ones_like(tokens)


class MarkerBlock(TokenBlock):
    """Attention adds 1, the MLP adds 10: ``out - in`` shows where each
    ran."""

    def __init__(self):
        super().__init__()
        self.attn = Marker()
        self.mlp = nn.Sequential(Marker(), nn.Identity())

    def mlp_residual(self, tokens):
        return tokens + 10 * self.mlp(tokens)


def pruner(**pruning):
    layout = PruningLayout(block_names=['blocks.0'], blocks_per_stage=[1])
    pruning.setdefault('scorer', dict(type='L2NormScorer', normalize='none'))
    return TokenPruner(pruning, layout)


def run(runner, scores, protected, valid=None):
    """Scores are the token values (C = 1), so L2NormScorer ranks by them.
    Returns the ``[R, N]`` update of every token and the record."""
    x = scores[:, None, None, :].clone()
    valid = torch.ones_like(protected) if valid is None else valid
    out, _ = runner(MarkerBlock(), x, 0, 0, valid, torch.ones_like(valid),
                    protected=protected)
    return (out - x).flatten(1), runner.records[-1]


SCORES = torch.tensor([[0.1, 0.2, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5],
                       [9.0, 0.3, 0.6, 0.7, 0.2, 0.8, 0.1, 0.4]])
PROTECTED = torch.tensor([[True, True] + [False] * 6,
                          [False] * 6 + [True, True]])


@pytest.mark.parametrize('keep', [0.3, 0.5, 0.78])
def test_protected_kept_plus_ratio_of_the_others(keep):
    update, record = run(pruner(keep_ratios=keep), SCORES, PROTECTED)
    kept = update > 0
    assert kept[PROTECTED].all()
    expected = math.ceil(keep * 6)
    assert (kept & ~PROTECTED).sum(1).tolist() == [expected, expected]
    for row in range(2):
        others = SCORES[row].masked_fill(PROTECTED[row], float('-inf'))
        best = others.topk(expected).indices
        assert kept[row, best].all()
    assert torch.equal(record.kept.flatten(1), kept)
    # attention and MLP both ran on the kept tokens only
    assert set(update.unique().tolist()) <= {0., 11.}


def test_protected_padding_not_counted():
    valid = torch.ones_like(PROTECTED)
    valid[:, 3:5] = False  # two unprotected tokens of each row are padding
    update, _ = run(pruner(keep_ratios=0.5), SCORES, PROTECTED, valid)
    kept = update > 0
    assert kept[PROTECTED].all() and not kept[~valid].any()
    assert (kept & ~PROTECTED).sum(1).tolist() == [2, 2]  # ceil(0.5 * 4)


def test_protected_with_own_mlp_ratio():
    update, record = run(pruner(keep_ratios=0.5, mlp_keep_ratios=0.2),
                         SCORES, PROTECTED)
    attention, mlp = update.remainder(10) > 0, update >= 10
    assert attention[PROTECTED].all() and mlp[PROTECTED].all()
    assert (mlp & ~PROTECTED).sum(1).tolist() == [2, 2]  # ceil(0.2 * 6)
    assert record.mlp_kept.flatten(1)[PROTECTED].all()


def test_protected_dense_at_keep_one():
    update, record = run(pruner(keep_ratios=1.0), SCORES, PROTECTED)
    assert (update == 11).all() and record.kept.all()


def test_protected_with_dynamic_retention():
    update, _ = run(pruner(dynamic=dict(mass=0.5, min_ratio=0.1)), SCORES,
                    PROTECTED)
    kept = update > 0
    assert kept[PROTECTED].all()
    # row 0: 5 + 4 of the others' 15.5 reach half the mass
    assert (kept & ~PROTECTED).sum(1)[0] == 2


def test_protected_mass_not_counted_in_dynamic_retention():
    scores = torch.tensor([[10., 10., 4., 1., 1., 1., 1.]])
    protected = torch.tensor([[True, True] + [False] * 5])
    update, _ = run(pruner(dynamic=dict(mass=0.5, min_ratio=0.1)), scores,
                    protected)
    # half of the others' mass (8) is the 4 alone; with the protected
    # tokens' mass it would take two of them
    assert (update > 0).sum() == 2 + 1


def test_protected_needs_stop_reduction():
    with pytest.raises(ValueError, match='protect'):
        run(pruner(keep_ratios=0.5, reduction='merge'), SCORES, PROTECTED)


def test_protect_tokens_ranks_protected_first():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.7]])
    protected = torch.tensor([[False, True, False, False]])
    candidates = torch.ones_like(protected)
    ranked, counts = protect_tokens(scores, torch.tensor([1]), candidates,
                                    protected)
    index, _ = select_tokens(ranked, counts, candidates)
    assert counts.tolist() == [2] and index.tolist() == [[0, 1]]
