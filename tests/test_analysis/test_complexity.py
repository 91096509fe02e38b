"""MAC / SOP counting."""
import math

import pytest
import torch
from mmengine.analysis import FlopAnalyzer

from mmtpspike.analysis import MacCounter, count_macs
from mmtpspike.models import SDTV3

TINY = dict(arch='t', depths=(1, 1, 2, 1))


def test_dense_macs_match_mmengine_count():
    torch.manual_seed(0)
    model = SDTV3(**TINY).eval()
    image = torch.randn(1, 3, 96, 160)
    ours = count_macs(model, image).total
    # mmengine counts BN too; on the BN-folded model (what runs at
    # inference, and what our counter models) the counts must agree
    model.fuse(channels_last=False)
    analyzer = FlopAnalyzer(model, (image, ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    assert ours == pytest.approx(analyzer.total(), rel=0.01)


def test_pruned_macs_drop_by_hand_computed_amount():
    keep, height, width = 0.5, 96, 160
    dense = SDTV3(**TINY).eval()
    pruned = SDTV3(**TINY, pruning=dict(keep_ratios=keep)).eval()
    image = torch.randn(1, 3, height, width)
    dense_macs = count_macs(dense, image).total
    pruned_macs = count_macs(pruned, image).total
    expected_change = 0
    for channels, depth, stride in [(96, 2, 16), (128, 1, 16)]:
        tokens = math.ceil(height / stride) * math.ceil(width / stride)
        kept = math.ceil(keep * tokens)
        # per token: q, k (2 C^2), v and proj (8 C^2), MLP (8 C^2) and the
        # linear attention matmuls (2 C * 4C / 8 heads = C^2)
        per_token = 19 * channels**2
        scorer = (3 * 3 + 3) * channels * tokens
        expected_change += depth * (scorer - (tokens - kept) * per_token)
    assert pruned_macs - dense_macs == expected_change


def test_quadratic_attention_macs():
    model = SDTV3(**TINY, attention_order='quadratic').eval()
    linear = SDTV3(**TINY).eval()
    image = torch.randn(1, 3, 64, 64)
    extra = count_macs(model, image).total - count_macs(linear, image).total
    tokens = 16
    expected = sum(depth * (tokens**2 * 5 * c - 2 * c * 4 * c // 8 * tokens)
                   for c, depth in [(96, 2), (128, 1)])
    assert extra == expected


def _zero_biases(model):
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, 'bias', None) is not None:
                module.bias.zero_()
    return model


def test_sops_zero_without_activity_and_grow_with_it():
    torch.manual_seed(0)
    model = _zero_biases(SDTV3(**TINY).eval())
    zero = count_macs(model, torch.zeros(1, 3, 64, 96))
    assert zero.sops == 0
    assert zero.float_macs > 0  # the encoding conv still computes
    base = torch.randn(1, 3, 64, 96)
    sops = [count_macs(model, base * scale).sops for scale in (0.5, 2, 8)]
    assert 0 < sops[0] < sops[1] < sops[2]
    assert zero.energy_mj() < count_macs(model, base * 8).energy_mj()


def test_attention_sops_follow_the_q_and_k_neurons():
    from active_network import activate
    torch.manual_seed(0)
    image = torch.randn(1, 3, 64, 96)
    model = activate(SDTV3(**TINY), image)
    attn = model.stages[2].blocks[0].attn
    seen = {}
    for role in ('q_spike', 'k_spike'):
        getattr(attn, role).register_forward_hook(
            lambda m, a, out, role=role: seen.__setitem__(role, out.clone()))
    counter = count_macs(model, image)
    name = 'stages.2.blocks.0.attn.matmul'
    counts = 4 * (seen['q_spike'].mean() + seen['k_spike'].mean())
    assert counter.sops_by_module[name] > 0
    # q (k^T v): the two matmuls have equal MACs when every token queries
    assert counter.sops_by_module[name] == pytest.approx(
        counter.by_module[name] / 2 * float(counts), rel=1e-5)


def test_context_attention_counts_keys_over_the_whole_map():
    keep, height, width = 0.5, 96, 160
    image = torch.randn(1, 3, height, width)
    kept_only = SDTV3(**TINY, pruning=dict(keep_ratios=keep)).eval()
    context = SDTV3(**TINY, pruning=dict(
        keep_ratios=keep, attention_context='all')).eval()
    extra = count_macs(context, image).total - count_macs(
        kept_only, image).total
    expected = 0
    for channels, depth in [(96, 2), (128, 1)]:
        tokens = 6 * 10
        stopped = tokens - math.ceil(keep * tokens)
        # stopped tokens add their k and v convs (C^2 + 4 C^2), the head
        # neuron, and k^T v terms (C * 4C / 8 heads)
        expected += depth * stopped * (5 * channels**2 + channels**2 // 2)
    assert extra == expected


def test_merging_pays_for_its_similarity_matrix():
    image = torch.randn(1, 3, 64, 96)
    pruned = SDTV3(**TINY, pruning=dict(keep_ratios=0.5)).eval()
    merged = SDTV3(**TINY, pruning=dict(keep_ratios=0.5,
                                        reduction='merge')).eval()
    ours, theirs = count_macs(merged, image), count_macs(pruned, image)
    tokens = 4 * 6
    matching = sum(depth * channels * tokens**2
                   for channels, depth in [(96, 2), (128, 1)])
    assert ours.total_of('.matching') == matching
    # merging needs no scorer; the rest of the work is the same
    scorer = sum(depth * (3 * 3 + 3) * channels * tokens
                 for channels, depth in [(96, 2), (128, 1)])
    assert ours.total - matching == theirs.total - scorer


def test_a_sum_of_spike_tensors_counts_every_spike():
    """A conv reading an integer residual stream (spikes of two neurons
    added, LIF D = 1) does one AC per arriving spike, not a MAC."""
    conv = torch.nn.Conv2d(2, 3, 1, bias=False)
    spikes = torch.tensor([0., 1., 2., 3.]).view(1, 1, 2, 2).repeat(
        1, 2, 1, 1)
    with MacCounter(conv, max_spikes=1) as counter:
        conv(spikes)
    assert counter.total == 4 * 2 * 3
    assert counter.float_macs == 0
    assert counter.sops == pytest.approx(counter.total * 1.5)
    with MacCounter(conv, max_spikes=1) as counter:
        conv(spikes + 0.5)  # real values: MACs
    assert counter.float_macs == counter.total and counter.sops == 0
