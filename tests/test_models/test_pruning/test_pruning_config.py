"""PruningConfig: one validated configuration for build and retention
changes."""
import pytest
import torch

from active_network import TINY_SDTV3 as TINY
from active_network import active_pair
from mmtpspike.models import SDTV3
from mmtpspike.models.pruning import PruningConfig


def _kept_share(model, x, field='kept'):
    """Mean share of valid tokens kept (``field`` of the records)."""
    with torch.no_grad():
        model(x)
    shares = [getattr(r, field).float().mean().item()
              for r in model.token_records]
    return sum(shares) / len(shares)


def test_unknown_key_names_the_allowed_ones():
    with pytest.raises(KeyError, match="'keep_ratio'.*allowed.*keep_ratios"):
        PruningConfig.from_dict(dict(keep_ratio=0.5))
    with pytest.raises(TypeError, match='pruning must be a dict'):
        PruningConfig.from_dict(0.5)


def test_backbone_builds_from_the_config_fields():
    model = SDTV3(**TINY, pruning=dict(keep_ratios=0.5, skip_mixer=True))
    assert model.pruner.config == PruningConfig(keep_ratios=0.5,
                                                skip_mixer=True)
    with pytest.raises(KeyError, match='unknown key'):
        SDTV3(**TINY, pruning=dict(keep=0.5))


def test_set_keep_ratios_is_checked_like_the_config():
    model = SDTV3(**TINY, pruning=dict(dynamic=dict(mass=0.8)))
    # a ratio under dynamic retention used to be accepted and ignored
    with pytest.raises(ValueError, match='dynamic sets the retention'):
        model.set_keep_ratios(0.25)
    pruned = SDTV3(**TINY, pruning=dict(keep_ratios=0.5))
    with pytest.raises(ValueError, match=r'\(0, 1\]'):
        pruned.set_keep_ratios(1.5)
    with pytest.raises(ValueError, match='has 3 values'):
        pruned.set_keep_ratios([0.5, 0.5, 0.5])
    with pytest.raises(KeyError, match='replace_ratios takes'):
        pruned.set_keep_ratios(0.5, mode='cumulative')
    assert pruned.pruner.keep_ratios == [0.5] * 4


def test_set_keep_ratios_moves_every_ratio_it_is_given():
    _, pruned, x = active_pair(keep_ratios=0.5, mlp_keep_ratios=0.25)
    before = _kept_share(pruned, x, 'mlp_kept')
    pruned.set_keep_ratios(0.5, mlp_keep_ratios=0.75)
    assert pruned.pruner.mlp_keep_ratios == [0.75] * 4
    assert pruned.pruner.config.mlp_keep_ratios == 0.75
    assert _kept_share(pruned, x, 'mlp_kept') > before + 0.4
    # ratios not given stay as they are
    pruned.set_keep_ratios(0.25)
    assert pruned.pruner.mlp_keep_ratios == [0.75] * 4
    assert pruned.pruner.keep_ratios == [0.25] * 4
