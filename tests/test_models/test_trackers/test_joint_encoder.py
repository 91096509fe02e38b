"""JointTokenEncoder: one-stream template + search tokens with pruning."""
import math

import pytest
import torch

from active_network import assert_active
from mmtpspike.models.trackers import (CandidateEliminationScorer,
                                       JointContext, JointLayout)
from tiny_tracking import encoder_pair

SCORERS = [dict(type='IRToPScorer'), dict(type='RandomScorer'),
           dict(type='CandidateEliminationScorer')]


@pytest.mark.parametrize('block_type', ['sdtv3', 'spikformer'])
def test_keep_one_is_the_dense_encoder(block_type):
    dense, pruned, crops = encoder_pair(block_type, keep_ratios=1.0)
    assert_active(dense, *crops)
    with torch.no_grad():
        for a, b in zip(dense(*crops), pruned(*crops)):
            assert torch.equal(a, b)
    assert all(record.kept.all() for record in pruned.token_records)


@pytest.mark.parametrize('block_type', ['sdtv3', 'spikformer'])
@pytest.mark.parametrize('scorer', SCORERS)
def test_template_never_stopped(block_type, scorer):
    dense, pruned, crops = encoder_pair(block_type, keep_ratios=0.3,
                                        scorer=scorer)
    with torch.no_grad():
        dense_search = dense(*crops)[1]
        pruned_search = pruned(*crops)[1]
    layout = pruned.context.layout
    assert len(pruned.token_records) == 2
    for record in pruned.token_records:
        template_kept, search_kept = layout.split(record.kept.flatten(1))
        assert template_kept.all()
        expected = math.ceil(0.3 * layout.num_search)
        assert search_kept.flatten(1).sum(1).tolist() == \
            [expected] * search_kept.shape[0]
    kept_maps = pruned.search_kept_maps()
    assert [tuple(m.shape) for m in kept_maps] == [(4, 8, 8)] * 2
    assert not torch.equal(dense_search, pruned_search)


def test_shared_selection_over_timesteps():
    _, pruned, crops = encoder_pair(keep_ratios=0.5)
    with torch.no_grad():
        pruned(*crops)
    kept = pruned.search_kept_maps()[0].view(2, 2, -1)  # [T, B, Ns]
    assert torch.equal(kept[0], kept[1])


@pytest.mark.parametrize('block_type', ['sdtv3', 'spikformer'])
def test_mixer_never_crosses_template_and_search(block_type):
    dense, _, crops = encoder_pair(block_type)
    with torch.no_grad():
        dense(*crops)  # sets the layout
    layout = dense.context.layout
    generator = torch.Generator().manual_seed(1)
    template = torch.rand(4, 32, *layout.template_shape, generator=generator)
    search = torch.rand(4, 32, *layout.search_shape, generator=generator)
    block = dense.blocks[0]
    with torch.no_grad():
        mixed = layout.split(block.mix(layout.join(template, search)))
        # the template's bottom-right corner is the search's first token's
        # neighbour in the joint row
        changed = template.clone()
        changed[..., -1, -1] += 3.
        moved = layout.split(block.mix(layout.join(changed, search)))
        search_changed = search.clone()
        search_changed[..., 0, 0] += 3.
        moved_back = layout.split(block.mix(layout.join(template,
                                                        search_changed)))
    assert torch.equal(mixed[1], moved[1])
    assert torch.equal(mixed[0], moved_back[0])
    if block_type == 'sdtv3':  # a real mixer: the change spreads in its map
        assert not torch.equal(mixed[0][..., -2, -2], moved[0][..., -2, -2])


def test_layout_round_trip_and_centre():
    layout = JointLayout((4, 4), (8, 8))
    template = torch.rand(3, 5, 4, 4)
    search = torch.rand(3, 5, 8, 8)
    joint = layout.join(template, search)
    assert joint.shape == (3, 5, 1, 80)
    back = layout.split(joint)
    assert torch.equal(back[0], template) and torch.equal(back[1], search)
    assert layout.template_centre_index().tolist() == [5, 6, 9, 10]
    assert JointLayout((3, 5), (8, 8)).template_centre_index().tolist() == \
        [7]
    assert layout.template_mask(2).sum(1).tolist() == [16, 16]


def test_candidate_elimination_prefers_tokens_like_the_centre():
    context = JointContext()
    context.layout = JointLayout((2, 2), (2, 3))
    scorer = CandidateEliminationScorer(normalize='none')
    scorer.bind(context)
    centre = torch.tensor([1., 0., 0.])
    tokens = torch.stack([centre] * 4 + [
        torch.tensor([0., 1., 0.]), centre * 2,
        torch.tensor([1., 1., 0.]), torch.tensor([-1., 0., 0.]),
        torch.tensor([0., 0., 1.]), torch.tensor([1., 0., 1.])
    ], 1)  # [C = 3, N = 10]
    scores = scorer(tokens[None, :, None], 1)[0]
    search = scores[4:]
    assert search.argmax() == 1
    assert sorted(search.argsort(descending=True).tolist()[1:3]) == [2, 5]
    assert search.argmin() == 3
    assert (scores[:4] == search.max()).all()


def test_candidate_elimination_needs_a_layout():
    scorer = CandidateEliminationScorer()
    with pytest.raises(RuntimeError, match='JointContext'):
        scorer(torch.rand(1, 3, 1, 10), 1)
    scorer.bind(JointContext())
    with pytest.raises(RuntimeError, match='JointLayout'):
        scorer(torch.rand(1, 3, 1, 10), 1)


def test_rejects_options_that_cannot_protect():
    from mmtpspike.models.trackers import JointTokenEncoder
    with pytest.raises(ValueError, match='protects'):
        JointTokenEncoder(patch_dims=(8, ), depth=1, num_heads=1,
                          pruning=dict(keep_ratios=0.5, reduction='merge'))


@pytest.mark.parametrize('scorer', SCORERS[::2])
def test_images_of_a_batch_are_independent(scorer):
    _, pruned, (template, search) = encoder_pair(keep_ratios=0.5,
                                                 scorer=scorer)
    with torch.no_grad():
        batch = pruned(template, search)
        for index in range(2):
            single = pruned(template[index:index + 1],
                            search[index:index + 1])
            for a, b in zip(batch, single):
                torch.testing.assert_close(a[index:index + 1], b)
