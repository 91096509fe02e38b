"""Stochastic depth decides once per image, for all its timestep rows."""
import pytest
import torch
from mmcv.cnn.bricks import DropPath

from mmtpspike.models.backbones import SDTV3, QKFormer, Spikformer
from mmtpspike.models.layers import ImageDropPath, drop_path_rates

T, B = 2, 64


def branch_kept(drop, rows=T * B):
    """``[T, B]`` bool: whether each row's branch survived (train mode)."""
    torch.manual_seed(0)
    out = drop.train()(torch.ones(rows, 3, 5))
    return (out[:, 0, 0] != 0).view(T, B)


def test_timesteps_of_an_image_are_dropped_together():
    kept = branch_kept(ImageDropPath(0.5, num_timesteps=T))
    assert torch.equal(kept[0], kept[1])
    assert kept.any() and not kept.all()


def test_a_per_row_drop_path_would_fail():
    """mmcv's DropPath (what TokenBlock used) decides per row, i.e. per
    timestep: the assertion above fails for it."""
    kept = branch_kept(DropPath(0.5))
    assert not torch.equal(kept[0], kept[1])


def test_one_timestep_draws_as_the_per_sample_drop_path():
    x = torch.rand(8, 3, 5)
    torch.manual_seed(1)
    ours = ImageDropPath(0.3).train()(x)
    torch.manual_seed(1)
    assert torch.equal(ours, DropPath(0.3).train()(x))


def test_kept_branches_are_rescaled_and_eval_is_the_identity():
    drop = ImageDropPath(0.5, num_timesteps=T)
    x = torch.ones(T * B, 4)
    torch.manual_seed(0)
    assert set(drop.train()(x).unique().tolist()) == {0.0, 2.0}
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize('kwargs,match', [
    (dict(drop_prob=1.0), 'drop_prob'), (dict(drop_prob=-0.1), 'drop_prob'),
    (dict(drop_prob=0.1, num_timesteps=0), 'num_timesteps')])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImageDropPath(**kwargs)


def test_rows_must_be_whole_images():
    with pytest.raises(ValueError, match='T=2'):
        ImageDropPath(0.5, num_timesteps=2).train()(torch.ones(3, 4))


def test_rates_rise_linearly_to_the_backbone_rate():
    assert drop_path_rates(0.3, 4) == pytest.approx([0, 0.1, 0.2, 0.3])
    assert drop_path_rates(0.3, 0) == []


@pytest.mark.parametrize('backbone,kwargs', [
    (SDTV3, dict(arch='t')),
    (QKFormer, dict(embed_dims=[16, 32, 64], depths=(1, 1, 1), num_heads=2)),
    (Spikformer, dict(embed_dims=32, depth=2, num_heads=4))])
@pytest.mark.parametrize('rate', [1.0, -0.1])
def test_backbone_rate_out_of_range_is_a_clear_error(backbone, kwargs, rate):
    with pytest.raises(ValueError,
                       match=r'drop_path_rate must be in \[0, 1\)'):
        backbone(**kwargs, drop_path_rate=rate)
