"""Selection against a transcription of the public TP-Spikformer block.

``public_block`` below transcribes the order of operations of the public
SDT-V3 TP block (``MS_Block_Spike_SepConv.forward`` in the public
``sdtv3_drop/models_drop.py``), using this package's sub-modules for the
layers: score the block *input* with the all-ones 3 x 3 conv (divided by 9)
and ``-cos``, softmax, ``topk(k * k)``; then ``x = x + conv(x)``; gather the
kept tokens, add attention and MLP residuals, scatter them back.
"""
import pytest
import torch
import torch.nn.functional as F

from active_network import activate
from mmtpspike.models import SDTV3

SIDE, KEPT_SIDE = 8, 6  # public code keeps k x k = 36 of 64 tokens


def public_scores(x: torch.Tensor) -> torch.Tensor:
    """The public spatial score of ``x: [B, C, H, W]`` -> ``[B, H * W]``, in
    the public order of operations (``LocalSpatialSimilarity``)."""
    batch, channels = x.shape[:2]
    kernel = torch.ones(channels, channels, 3, 3) / 9.0
    local_mean = F.conv2d(x, kernel, padding=1)
    cosine = torch.nn.CosineSimilarity(dim=1, eps=1e-6)
    sim = cosine(x.view(batch, channels, -1),
                 local_mean.view(batch, channels, -1))
    return F.softmax(-sim, dim=1)


def top_tokens(scores: torch.Tensor, count: int) -> torch.Tensor:
    """``topk`` with ties broken by the lowest token index (the public code
    leaves the order of ties to ``torch.topk``)."""
    return scores.sort(dim=1, descending=True, stable=True).indices[:, :count]


def public_block(block, x: torch.Tensor, kept_count: int):
    """One public TP block; returns the output and the kept indices."""
    batch, channels, height, width = x.shape
    indices = top_tokens(public_scores(x), kept_count)
    gather = indices.unsqueeze(1).expand(-1, channels, -1)
    x = x + block.sep_conv(x)
    x = x.flatten(2)
    informative = x.gather(2, gather)
    informative = informative + block.attn(informative)
    informative = informative + block.mlp(informative)
    x = x.clone().scatter_(2, gather, informative)
    return x.view(batch, channels, height, width), indices


def test_input_scoring_keeps_the_public_tokens():
    torch.manual_seed(0)
    image = torch.randn(2, 3, SIDE * 16, SIDE * 16)
    model = SDTV3(arch='t', depths=(1, 1, 3, 1), pruning=dict(
        keep_ratios=KEPT_SIDE**2 / SIDE**2,
        scorer=dict(type='IRToPScorer', variant='reference'),
        score_on='input'))
    model = activate(model, image)
    with torch.no_grad():
        ours = model(image)
        x = model.stem.blocks[0](model.stem.downsample(image))
        for stage in model.stages[:3]:
            x = stage.downsample(x)
            if stage is model.stages[2]:
                break
            for block in stage.blocks:
                x = block(x)
        for block, record in zip(model.stages[2].blocks,
                                 model.token_records):
            x, indices = public_block(block, x, KEPT_SIDE**2)
            public_kept = torch.zeros(2, SIDE * SIDE, dtype=torch.bool)
            public_kept.scatter_(1, indices, True)
            assert torch.equal(record.kept.flatten(1), public_kept)
    torch.testing.assert_close(x, ours[2], rtol=0, atol=1e-5)


def public_backbone_tokens(model, image: torch.Tensor, kept_count: int):
    """The kept tokens of every transformer block of ``model`` (an SDTV3
    with ``stage4_stride=1``, the public layout) run in the public order."""
    kept = []
    x = model.stem.blocks[0](model.stem.downsample(image))
    for stage in model.stages:
        x = stage.downsample(x)
        for block in stage.blocks:
            if stage in (model.stages[0], model.stages[1]):
                x = block(x)
                continue
            x, indices = public_block(block, x, kept_count)
            public_kept = torch.zeros(x.shape[0], x[0, 0].numel(),
                                      dtype=torch.bool)
            kept.append(public_kept.scatter_(1, indices, True))
    return kept


@pytest.mark.parametrize('arch, state', [('t', 'active'), ('t', 'fresh'),
                                         ('l', 'fresh')])
def test_reference_scorer_keeps_the_public_tokens_in_every_block(
        arch, state):
    """All eight blocks pruned at 100 of 196 tokens (224 x 224 input): the
    ``reference`` variant computes the public arithmetic, so ties fall as in
    the public code, block after block. ``active``: every stage fires
    (randomised BN statistics). ``fresh``: initial BN statistics, under
    which most tokens of the transformer stages are silent or repeat, the
    tie-heavy regime of spiking maps; a cheaper formula of the same
    quantity (channel sum + box filter, eps 1e-8) kept 20-104 other tokens
    per block there."""
    torch.manual_seed(0)
    image = torch.randn(1, 3, 224, 224)
    model = SDTV3(arch=arch, stage4_stride=1, pruning=dict(
        keep_ratios=100 / 196,
        scorer=dict(type='IRToPScorer', variant='reference')))
    model = activate(model, image) if state == 'active' else model.eval()
    with torch.no_grad():
        model(image)
        public = public_backbone_tokens(model, image, 100)
    assert len(model.token_records) == len(public) == 8
    for block, (record, public_kept) in enumerate(
            zip(model.token_records, public)):
        assert torch.equal(record.kept.flatten(1), public_kept), block


def test_mixed_scoring_keeps_other_tokens():
    """The previous default (scoring after the mixer) differs from the
    public selection somewhere: the test above can tell them apart."""
    torch.manual_seed(0)
    image = torch.randn(2, 3, SIDE * 16, SIDE * 16)
    kept = {}
    for score_on in ('input', 'mixed'):
        model = SDTV3(arch='t', depths=(1, 1, 3, 1), pruning=dict(
            keep_ratios=KEPT_SIDE**2 / SIDE**2,
            scorer=dict(type='IRToPScorer', variant='reference'),
            score_on=score_on))
        model = activate(model, image)
        with torch.no_grad():
            model(image)
        kept[score_on] = [r.kept for r in model.token_records]
    assert any(not torch.equal(a, b)
               for a, b in zip(kept['input'], kept['mixed']))


def test_ties_go_to_the_lowest_token_index():
    from mmtpspike.models.pruning.selection import select_tokens
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.9, 0.1]])
    candidates = torch.ones_like(scores, dtype=torch.bool)
    index, _ = select_tokens(scores, torch.tensor([4]), candidates)
    assert index.tolist() == [[0, 1, 2, 4]]
