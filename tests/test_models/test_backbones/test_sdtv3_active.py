"""SDTV3 equivalences on an active network, each proven able to fail.

Every equivalence below is checked on a network whose stages all fire
(:mod:`active_network`); a ``*_catches_*`` test applies a small deliberate
bug to the code under test and shows that the same check then fails.
"""
import dataclasses

import pytest
import torch

from active_network import activate, assert_active
from mmtpspike.models import SDTV3
from mmtpspike.models.layers import spike_driven
from mmtpspike.models.layers import spike_neurons as neurons_module
from mmtpspike.models.layers.sdtv3_blocks import SpikeAttention
from mmtpspike.models.pruning import CarryOverRestorer

TINY = dict(arch='t', depths=(1, 1, 2, 2))
IMG = (2, 3, 96, 64)


def active_model(seed: int = 0, **kwargs) -> tuple:
    """An activated tiny SDTV3 and the input it was calibrated on."""
    torch.manual_seed(seed)
    x = torch.randn(*IMG)
    model = activate(SDTV3(**TINY, **kwargs), x, seed=seed)
    return model, x


def max_difference(outs_a, outs_b) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(outs_a, outs_b))


def test_fixture_fires_in_every_stage():
    model, x = active_model()
    rates = assert_active(model, x)
    assert set(rates) == {'stem', 'stages.0', 'stages.1', 'stages.2',
                          'stages.3'}


# -- linear attention q (k^T v) == quadratic (q k^T) v -----------------------

def attention_order_gap() -> float:
    linear, x = active_model()
    quadratic = SDTV3(**TINY, attention_order='quadratic').eval()
    quadratic.load_state_dict(linear.state_dict())
    with torch.no_grad():
        return max_difference(linear(x), quadratic(x))


def test_linear_attention_equals_quadratic():
    assert attention_order_gap() <= 1e-5


def test_attention_order_check_catches_a_dropped_token(monkeypatch):
    """Off-by-one in the linear path: the last token leaves ``k^T v``."""
    original = SpikeAttention._attend

    def buggy(self, q, k, v):
        if self.attention_order == 'linear':
            return q @ (k[..., :-1, :].transpose(-2, -1) @ v[..., :-1, :])
        return original(self, q, k, v)

    monkeypatch.setattr(SpikeAttention, '_attend', buggy)
    assert attention_order_gap() > 1e-2


# -- spike-driven unrolling over all stages ----------------------------------

def unrolling_gap() -> float:
    """In float64: summing D binary planes rounds differently from one conv
    on the counts, and in float32 that last-bit difference flips a neuron
    sitting on a quantisation boundary (seen on some CPUs)."""
    model, x = active_model()
    model, x = model.double(), x.double()
    synapse_stages = set()
    with torch.no_grad():
        expected = model(x)
        with spike_driven(model, max_spikes=4):
            for name, module in model.named_modules():
                if isinstance(module, neurons_module.BinarySpikeSynapse):
                    synapse_stages.add(name.split('.')[0] if not name.
                                       startswith('stages') else
                                       '.'.join(name.split('.')[:2]))
            unrolled = model(x)
    assert synapse_stages == {'stem', 'stages.0', 'stages.1', 'stages.2',
                              'stages.3'}
    return max_difference(expected, unrolled)


def test_spike_driven_unrolling_equals_integer_spikes():
    assert unrolling_gap() <= 1e-4


def test_unrolling_check_catches_a_lost_spike(monkeypatch):
    """Unrolling that drops the D-th spike of a full-count neuron."""
    original = neurons_module.unroll_spikes

    def buggy(spikes, max_spikes):
        planes = original(spikes, max_spikes)
        planes[-1] = 0
        return planes

    monkeypatch.setattr(neurons_module, 'unroll_spikes', buggy)
    assert unrolling_gap() > 1e-2


# -- neurons: train path (gradient) == inference path ------------------------

def train_eval_gap() -> float:
    """The whole backbone in train mode (surrogate-gradient neurons, input
    requiring grad) against eval mode (no grad); norms stay in eval mode so
    only the neurons' two code paths differ."""
    model, x = active_model()
    with torch.no_grad():
        expected = model(x)
    model.norm_eval = True
    model.train()
    x_grad = x.clone().requires_grad_(True)
    trained = model(x_grad)
    sum(o.sum() for o in trained).backward()
    assert x_grad.grad is not None and x_grad.grad.abs().sum() > 0
    return max_difference(expected, [o.detach() for o in trained])


def test_neurons_same_in_train_and_eval():
    assert train_eval_gap() <= 1e-5


def test_train_eval_check_catches_a_floor_quantiser(monkeypatch):
    """A train-path quantiser that floors instead of rounding."""
    original_init = neurons_module.MultiSpike.__init__

    class FloorQuantizer(torch.nn.Module):
        """Straight-through ``floor(clamp(x, 0, D))``."""

        def __init__(self, max_spikes):
            super().__init__()
            self.max_spikes = max_spikes

        def forward(self, x):
            clamped = x.clamp(0, self.max_spikes)
            return clamped + (clamped.floor() - clamped).detach()

    def buggy_init(self, max_spikes=4):
        original_init(self, max_spikes)
        self.quantizer = FloorQuantizer(self.max_spikes)

    monkeypatch.setattr(neurons_module.MultiSpike, '__init__', buggy_init)
    assert train_eval_gap() > 1e-2


# -- gather / scatter at K = N_valid == dense --------------------------------

def gather_scatter_gap(img_shapes=None) -> float:
    """Dense backbone against the pruned path at ``keep = 0.9999``, which
    keeps every valid token but goes through gather / scatter."""
    dense, x = active_model()
    pruned = SDTV3(**TINY, pruning=dict(keep_ratios=0.9999)).eval()
    pruned.load_state_dict(dense.state_dict())
    with torch.no_grad():
        dense.set_img_shapes(img_shapes)
        expected = dense(x)
        pruned.set_img_shapes(img_shapes)
        out = pruned(x)
    assert all(record.kept.sum() == record.valid.sum()
               for record in pruned.token_records)
    return max_difference(expected, out)


@pytest.mark.parametrize('img_shapes', [None, [(96, 64), (70, 41)]])
def test_gather_scatter_at_all_valid_tokens_equals_dense(img_shapes):
    assert gather_scatter_gap(img_shapes) <= 1e-5


def test_gather_scatter_check_catches_a_shifted_scatter(monkeypatch):
    """A restorer writing each kept token one position too far."""
    original = CarryOverRestorer.forward

    def buggy(self, tokens, kept, selection):
        shifted = dataclasses.replace(
            selection,
            index=(selection.index + 1).clamp(max=tokens.shape[2] - 1))
        return original(self, tokens, kept, shifted)

    monkeypatch.setattr(CarryOverRestorer, 'forward', buggy)
    assert gather_scatter_gap() > 1e-2


# -- padding: keep 1.0 and keep just below 1 agree ---------------------------

def test_keep_one_and_just_below_one_treat_padding_alike():
    dense, x = active_model()
    outs = {}
    for keep in (1.0, 0.9999):
        model = SDTV3(**TINY, pruning=dict(keep_ratios=keep)).eval()
        model.load_state_dict(dense.state_dict())
        model.set_img_shapes([(96, 64), (70, 41)])
        with torch.no_grad():
            outs[keep] = model(x)
        padded = [r for r in model.token_records if not r.valid.all()]
        assert padded and all(not (r.kept & ~r.valid).any() for r in padded)
    for a, b in zip(outs[1.0], outs[0.9999]):
        assert torch.equal(a, b)


def test_pruned_backbone_warns_once_about_unannounced_padding():
    model, _ = active_model(pruning=dict(keep_ratios=0.7))
    padded = torch.randn(1, 3, 96, 96)
    padded[..., 80:, :] = 0
    with pytest.warns(UserWarning, match='PaddingAwarePruningHook'):
        model(padded)
    with torch.no_grad(), _no_warnings():
        model(padded)


class _no_warnings:
    """Fail on any warning inside the block."""

    def __enter__(self):
        import warnings
        self._catcher = warnings.catch_warnings(record=True)
        self._log = self._catcher.__enter__()
        warnings.simplefilter('always')

    def __exit__(self, *exc):
        self._catcher.__exit__(*exc)
        assert not self._log, [str(w.message) for w in self._log]
