"""Pruning options beyond the paper: K/V context, separate MLP retention,
restorers, dynamic per-image retention."""
import pytest
import torch

from active_network import TINY_SDTV3 as TINY
from active_network import active_pair, activate, max_difference
from mmtpspike.models import SDTV3
from mmtpspike.models.pruning import (NeighbourUpdateRestorer, Selection,
                                      ZeroRestorer, mass_counts)


# -- K/V context -------------------------------------------------------------

def test_context_attention_equals_dense_attention_at_kept_tokens():
    dense, _, _ = active_pair()
    block = dense.stages[2].blocks[0]
    torch.manual_seed(1)
    tokens = torch.randn(2, 96, 24) * 2
    kept_index = torch.tensor([[0, 3, 4, 10, 17], [1, 2, 8, 9, 23]])
    kept = tokens.gather(2, kept_index.unsqueeze(1).expand(-1, 96, -1))
    with torch.no_grad():
        full = block.attention_residual(tokens)
        ours = block.attention_residual(kept, context=tokens)
        alone = block.attention_residual(kept)
    expected = full.gather(2, kept_index.unsqueeze(1).expand(-1, 96, -1))
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    assert float((alone - expected).abs().max()) > 1e-2


def test_context_all_at_every_token_is_dense():
    dense, pruned, x = active_pair(keep_ratios=0.9999,
                                   attention_context='all')
    with torch.no_grad():
        assert max_difference(dense(x), pruned(x)) <= 1e-5


def test_context_all_changes_pruned_outputs():
    _, kept_only, x = active_pair(keep_ratios=0.5)
    _, with_context, _ = active_pair(keep_ratios=0.5,
                                     attention_context='all')
    with torch.no_grad():
        assert max_difference(kept_only(x), with_context(x)) > 1e-2


# -- separate MLP retention --------------------------------------------------

def _token_counts(model, module_name):
    counts = []
    for stage in model.stages[2:]:
        for block in stage.blocks:
            getattr(block, module_name).register_forward_hook(
                lambda m, args, out: counts.append(args[0].shape[-1]))
    return counts


def test_mlp_keeps_its_own_share():
    _, pruned, x = active_pair(keep_ratios=0.5, mlp_keep_ratios=1.0)
    attention, mlp = _token_counts(pruned, 'attn'), _token_counts(
        pruned, 'mlp')
    with torch.no_grad():
        pruned(x)
    # 6 x 4 tokens at stride 16 for a 96 x 64 image
    assert attention == [12] * 4 and mlp == [24] * 4
    record = pruned.token_records[0]
    assert record.kept.flatten(1).sum(1).tolist() == [12, 12]
    assert record.mlp_kept.all()


def test_equal_mlp_ratio_is_the_plain_path():
    _, plain, x = active_pair(keep_ratios=0.5)
    _, same, _ = active_pair(keep_ratios=0.5, mlp_keep_ratios=0.5)
    with torch.no_grad():
        for a, b in zip(plain(x), same(x)):
            assert torch.equal(a, b)


# -- restorers ---------------------------------------------------------------

def _selection(kept_positions, valid):
    index = torch.tensor([kept_positions])
    return Selection(index, torch.ones_like(index, dtype=torch.bool),
                     valid.view(1, -1), (3, 4))


def test_neighbour_update_restorer_by_hand():
    tokens = torch.arange(12.).view(1, 1, 12)
    valid = torch.ones(3, 4, dtype=torch.bool)
    valid[:, 3] = False  # the last column is padding
    # kept: (0, 0) gets +10 and (2, 2) gets +4
    selection = _selection([0, 10], valid)
    kept = tokens[..., [0, 10]] + torch.tensor([10., 4.])
    out = NeighbourUpdateRestorer()(tokens, kept, selection).view(3, 4)
    update = out - tokens.view(3, 4)
    assert update[0, 0] == 10 and update[2, 2] == 4
    assert update[1, 0] == 10 and update[0, 1] == 10
    assert update[1, 1] == 7  # both kept tokens are its neighbours
    assert update[1, 2] == 4 and update[2, 1] == 4
    assert update[0, 2] == 0  # no kept neighbour: carry-over
    assert (update[:, 3] == 0).all()  # padding keeps its values


def test_zero_restorer_deletes_stopped_valid_tokens():
    tokens = torch.arange(1., 13.).view(1, 1, 12)
    valid = torch.ones(3, 4, dtype=torch.bool)
    valid[:, 3] = False
    selection = _selection([0, 10], valid)
    out = ZeroRestorer()(tokens, tokens[..., [0, 10]] * 2, selection)
    out = out.view(3, 4)
    assert out[0, 0] == 2 and out[2, 2] == 22
    assert out[:, 3].tolist() == [4., 8., 12.]
    assert out[valid].count_nonzero() == 2


@pytest.mark.parametrize('restorer', ['NeighbourUpdateRestorer',
                                      'ZeroRestorer'])
def test_restorers_run_in_the_backbone(restorer):
    _, carry, x = active_pair(keep_ratios=0.5)
    _, other, _ = active_pair(keep_ratios=0.5,
                              restorer=dict(type=restorer))
    with torch.no_grad():
        outs = other(x)
        assert max_difference(carry(x), outs) > 1e-2
    assert all(torch.isfinite(o).all() for o in outs)


# -- dynamic per-image retention ---------------------------------------------

def test_mass_counts_by_hand():
    scores = torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    candidates = torch.ones_like(scores, dtype=torch.bool)
    valid = torch.tensor([4, 4])
    counts = mass_counts(scores, candidates, valid, mass=0.8, min_ratio=0.25,
                         max_ratio=1.0)
    assert counts.tolist() == [2, 4]
    bounded = mass_counts(scores, candidates, valid, mass=0.8,
                          min_ratio=0.75, max_ratio=0.75)
    assert bounded.tolist() == [3, 3]


def test_dynamic_retention_differs_per_image():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 64)
    x[1] = x[1].mean()  # a flat image: its scores are even
    model = activate(SDTV3(**TINY, pruning=dict(
        dynamic=dict(mass=0.6, min_ratio=0.2, max_ratio=0.9))), x)
    with torch.no_grad():
        model(x)
    ratios = [record.keep_ratio_per_row for record in model.token_records]
    assert all(0.2 - 1e-6 <= r <= 0.9 + 1e-6 for row in ratios for r in row)
    assert any(row[0] != row[1] for row in ratios)


@pytest.mark.parametrize('pruning,match', [
    (dict(dynamic=dict(mass=1.5)), 'dynamic.mass'),
    (dict(dynamic=dict(min_ratio=0.8, max_ratio=0.5)), 'min_ratio'),
    (dict(dynamic=dict(mass=0.9), keep_ratios=0.5), 'leave keep_ratios'),
    (dict(dynamic=dict(share=0.9)), 'dynamic must be a dict'),
    (dict(attention_context='global'), 'attention_context'),
    (dict(mlp_keep_ratios=[0.5, 0.5, 0.5]), 'mlp_keep_ratios has 3'),
])
def test_bad_option_values(pruning, match):
    with pytest.raises(ValueError, match=match):
        SDTV3(**TINY, pruning=pruning)


# -- token merging baseline --------------------------------------------------

def test_merge_plan_by_hand():
    from mmtpspike.models.pruning.merging import (merge_tokens, plan_merges,
                                                  unmerge_updates)
    # 1 x 4 map: A = {0, 2}, B = {1, 3}; token 2 is a copy of token 3
    tokens = torch.tensor([[[1., 0., 5., 5.], [0., 1., 1., 1.]]])
    valid = torch.ones(1, 4, dtype=torch.bool)
    plan = plan_merges(tokens, 0.75, valid, (1, 4))
    assert plan.selection.index.tolist() == [[0, 1, 3]]
    assert plan.destination.tolist() == [[0, 1, 3, 3]]
    merged = merge_tokens(tokens, plan)
    assert merged[0, :, 3].tolist() == [5., 1.]
    processed = merged[..., [0, 1, 3]] + torch.tensor([[1., 2., 3.]])
    out = unmerge_updates(tokens, merged, processed, plan)
    assert out[0, 0].tolist() == [2., 2., 8., 8.]


def test_merge_keeps_the_same_counts_as_pruning():
    _, merged, x = active_pair(keep_ratios=0.56, reduction='merge')
    _, pruned, _ = active_pair(keep_ratios=0.56)
    counts = _token_counts(merged, 'attn')
    with torch.no_grad():
        outs = merged(x)
        pruned(x)
    assert all(torch.isfinite(o).all() for o in outs)
    for ours, theirs in zip(merged.token_records, pruned.token_records):
        assert torch.equal(ours.kept.flatten(1).sum(1),
                           theirs.kept.flatten(1).sum(1))
    assert counts == [14] * 4  # ceil(0.56 * 24)


def test_merge_at_every_token_is_dense():
    dense, merged, x = active_pair(keep_ratios=0.9999, reduction='merge')
    with torch.no_grad():
        assert max_difference(dense(x), merged(x)) <= 1e-5


def test_merge_plan_is_shared_by_the_timesteps_of_an_image():
    """T = 2 with LIF neurons: the timesteps of an image merge the same
    tokens (per-row plans differed between timesteps in every block, and a
    LIF slot carried one token's membrane state into another's)."""
    from mmtpspike.models.backbones import Spikformer
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 96)
    model = activate(Spikformer(
        embed_dims=32, depth=2, num_heads=4, num_timesteps=2,
        pruning=dict(keep_ratios=0.75, reduction='merge')), x)
    with torch.no_grad():
        model(x)
    assert len(model.token_records) == 2
    for record in model.token_records:
        first, second = record.kept.view(2, 2, -1)
        assert torch.equal(first, second)
        assert 0 < first.float().mean() < 1


def test_merge_refuses_options_it_cannot_honour():
    with pytest.raises(ValueError, match="reduction='merge'"):
        SDTV3(**TINY, pruning=dict(keep_ratios=0.5, reduction='merge',
                                   restorer=dict(type='ZeroRestorer')))
