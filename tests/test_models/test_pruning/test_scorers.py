"""Token scorers."""
import pytest
import torch
import torch.nn.functional as F

from mmtpspike.models.pruning import (IRToPScorer, L2NormScorer, RandomScorer,
                                      SpatialScorer, TemporalScorer,
                                      normalize_scores)


def public_reference_score(x, window):
    """The public TP-Spikformer ``LocalSpatialSimilarity``, in its order of
    operations: a dense all-ones C x C x k x k conv over k^2 (zero padding),
    ``CosineSimilarity(dim=1, eps=1e-6)`` on ``[B, C, N]``, softmax of
    ``-cos``."""
    batch, channels = x.shape[:2]
    kernel = torch.ones(channels, channels, window, window) / float(window**2)
    local_mean = F.conv2d(x, kernel, padding=window // 2)
    cosine = torch.nn.CosineSimilarity(dim=1, eps=1e-6)
    sim = cosine(x.view(batch, channels, -1),
                 local_mean.view(batch, channels, -1))
    return F.softmax(-sim, dim=1)


@pytest.mark.parametrize('window', [3, 7])
def test_reference_variant_is_the_public_arithmetic(window):
    """Bit for bit, on spike-like input full of exact ties."""
    torch.manual_seed(0)
    x = torch.randint(0, 3, (2, 16, 9, 13)).float() / 4
    scorer = SpatialScorer(window, variant='reference')
    assert torch.equal(scorer(x), public_reference_score(x, window))


def test_paper_variant_is_per_channel_local_mean():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 5, 6)
    scores = SpatialScorer(3, normalize='none')(x).view(5, 6)
    # token (2, 3): interior, plain 3x3 mean; token (0, 0): 2x2 corner mean
    for (r, c), window in [((2, 3), x[0, :, 1:4, 2:5]),
                           ((0, 0), x[0, :, 0:2, 0:2])]:
        local = window.flatten(1).mean(1)
        expected = 1 - F.cosine_similarity(x[0, :, r, c], local, dim=0)
        assert scores[r, c].item() == pytest.approx(expected.item(), abs=1e-5)


def test_uniform_map_scores_zero():
    x = torch.ones(1, 8, 6, 6)
    assert torch.allclose(SpatialScorer(normalize='none')(x),
                          torch.zeros(1, 36), atol=1e-6)


def test_temporal_t1_and_t4():
    torch.manual_seed(0)
    x1 = torch.randn(2, 4, 3, 5)
    t1 = TemporalScorer(normalize='none')(x1, 1)
    torch.testing.assert_close(t1, x1.abs().mean(1).flatten(1))
    x4 = torch.randn(4 * 2, 4, 3, 5)
    t4 = TemporalScorer(normalize='none')(x4, 4)
    seq = x4.view(4, 2, 4, 3, 5)
    expected = torch.cat([seq[:1].abs(), (seq[1:] - seq[:-1]).abs()]).mean(2)
    torch.testing.assert_close(t4, expected.flatten(2).flatten(0, 1))
    assert torch.isfinite(TemporalScorer()(x1, 1)).all()


def test_irtop_combines_terms_only_when_t_gt_1():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 5)
    spatial = SpatialScorer()(x)
    torch.testing.assert_close(IRToPScorer()(x, 1), spatial)
    x4 = torch.randn(8, 4, 3, 5)
    combined = IRToPScorer(spatial_weight=1., temporal_weight=2.)(x4, 4)
    expected = SpatialScorer()(x4, 4) + 2 * TemporalScorer()(x4, 4)
    torch.testing.assert_close(combined, expected)
    assert torch.isfinite(combined).all()


def test_normalisations_over_valid_tokens():
    scores = torch.tensor([[1., 2., 3., 100.]])
    valid = torch.tensor([[True, True, True, False]])
    soft = normalize_scores(scores, valid, 'softmax')
    assert soft[0, 3] == 0 and soft.sum().item() == pytest.approx(1.)
    minmax = normalize_scores(scores, valid, 'minmax')
    assert minmax.tolist() == [[0., 0.5, 1., 0.]]
    total = normalize_scores(scores, valid, 'sum')
    assert total.sum().item() == pytest.approx(1.) and total[0, 3] == 0


def test_random_scorer_reproducible():
    x = torch.randn(2, 4, 3, 5)
    assert torch.equal(RandomScorer(seed=3)(x), RandomScorer(seed=3)(x))
    assert not torch.equal(RandomScorer(seed=3)(x), RandomScorer(seed=4)(x))


def test_l2_norm_scorer_ranks_by_magnitude():
    x = torch.zeros(1, 2, 1, 3)
    x[0, 0, 0] = torch.tensor([1., 3., 2.])
    assert L2NormScorer()(x).argsort(descending=True).tolist() == [[1, 2, 0]]


@pytest.mark.parametrize('kwargs', [dict(window_size=4), dict(variant='x'),
                                    dict(normalize='l1')])
def test_bad_scorer_arguments(kwargs):
    with pytest.raises(ValueError):
        SpatialScorer(**kwargs)


def _valid_box(rows, cols, height, width):
    valid = torch.zeros(1, height, width, dtype=torch.bool)
    valid[:, :rows, :cols] = True
    return valid.flatten(1)


@pytest.mark.parametrize('variant', ['paper', 'reference'])
def test_window_ignores_tokens_outside_the_image(variant):
    """Scores of valid tokens do not depend on what the padding holds."""
    torch.manual_seed(0)
    valid = _valid_box(4, 5, 6, 8)
    x = torch.randn(1, 8, 6, 8)
    other = x.clone()
    other[..., 4:, :] = torch.randn_like(other[..., 4:, :]) * 5
    other[..., :, 5:] = 3.0
    scorer = SpatialScorer(3, variant=variant, normalize='none')
    a, b = scorer(x, 1, valid), scorer(other, 1, valid)
    torch.testing.assert_close(a[valid], b[valid])


def test_border_window_mean_counts_only_valid_neighbours():
    torch.manual_seed(0)
    valid = _valid_box(3, 3, 5, 5)
    x = torch.randn(1, 4, 5, 5)
    scores = SpatialScorer(3, normalize='none')(x, 1, valid).view(5, 5)
    # token (2, 2) is the valid corner: its window holds 4 valid tokens
    local = x[0, :, 1:3, 1:3].flatten(1).mean(1)
    expected = 1 - F.cosine_similarity(x[0, :, 2, 2], local, dim=0)
    assert scores[2, 2].item() == pytest.approx(expected.item(), abs=1e-5)


def test_zero_norm_tokens_have_defined_scores():
    x = torch.zeros(1, 4, 3, 3)
    x[0, :, 0, 0] = torch.tensor([1., -2., 0.5, 3.])
    x[0, :, 2, 2] = torch.tensor([1., 1., 1., 1.])
    x[0, :, 2, 0] = torch.tensor([1., 0., 0., 0.])
    x[0, :, 2, 1] = torch.tensor([-1., 0., 0., 0.])
    scores = SpatialScorer(3, normalize='none')(x).view(3, 3)
    assert torch.isfinite(scores).all()
    # an all-zero token carries nothing: the lowest score
    assert scores[1, 1].item() == 0 and scores[0, 2].item() == 0
    assert scores.min().item() >= -1e-6
    # (2, 0)'s window {(1, 0), (1, 1), (2, 0), (2, 1)} has mean zero: a
    # non-zero token next to an empty neighbourhood scores 1 (cos := 0)
    assert scores[2, 0].item() == pytest.approx(1.0)
    assert scores[2, 1].item() == pytest.approx(1.5)
