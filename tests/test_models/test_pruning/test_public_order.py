"""Selection against a transcription of the public TP-Spikformer block.

``public_block`` below transcribes the order of operations of the public
SDT-V3 TP block (``MS_Block_Spike_SepConv.forward`` in the public
``sdtv3_drop/models_drop.py``), using this package's sub-modules for the
layers: score the block *input* with the all-ones 3 x 3 conv (divided by 9)
and ``-cos``, softmax, ``topk(k * k)``; then ``x = x + conv(x)``; gather the
kept tokens, add attention and MLP residuals, scatter them back.
"""
import torch
import torch.nn.functional as F

from active_network import activate
from mmtpspike.models import SDTV3

SIDE, KEPT_SIDE = 8, 6  # public code keeps k x k = 36 of 64 tokens


def public_scores(x: torch.Tensor) -> torch.Tensor:
    """The public spatial score of ``x: [B, C, H, W]`` -> ``[B, H * W]``."""
    channels = x.shape[1]
    kernel = torch.ones(channels, channels, 3, 3) / 9.0
    local_mean = F.conv2d(x, kernel, padding=1)
    sim = F.cosine_similarity(x.flatten(2), local_mean.flatten(2), dim=1,
                              eps=1e-6)
    return F.softmax(-sim, dim=1)


def public_block(block, x: torch.Tensor, kept_side: int):
    """One public TP block; returns the output and the kept indices."""
    batch, channels, height, width = x.shape
    _, indices = torch.topk(public_scores(x), k=kept_side * kept_side, dim=1)
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
            x, indices = public_block(block, x, KEPT_SIDE)
            public_kept = torch.zeros(2, SIDE * SIDE, dtype=torch.bool)
            public_kept.scatter_(1, indices, True)
            assert torch.equal(record.kept.flatten(1), public_kept)
    torch.testing.assert_close(x, ours[2], rtol=0, atol=1e-5)


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
