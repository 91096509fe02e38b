"""Block-level early stopping inside SDTV3."""
import math

import pytest
import torch

from mmtpspike.models import SDTV3
from mmtpspike.models.pruning import expand_keep_ratios

TINY = dict(arch='t', depths=(1, 1, 2, 2))


def pair(keep, **pruning):
    torch.manual_seed(0)
    dense = SDTV3(**TINY).eval()
    pruned = SDTV3(**TINY, pruning=dict(keep_ratios=keep, **pruning)).eval()
    pruned.load_state_dict(dense.state_dict())
    return dense, pruned


@pytest.mark.parametrize('size', [(64, 64), (96, 64), (64, 160), (97, 161)])
@pytest.mark.parametrize('padded', [False, True])
def test_keep_one_is_bitwise_dense(size, padded):
    dense, pruned = pair(1.0)
    x = torch.randn(2, 3, *size)
    shapes = [size, (size[0] - 20, size[1] - 9) if padded else size]
    dense.set_img_shapes(shapes)
    pruned.set_img_shapes(shapes)
    for a, b in zip(dense(x), pruned(x)):
        assert torch.equal(a, b)


def _attention_token_counts(model):
    counts = []
    for stage in model.stages[2:]:
        for block in stage.blocks:
            block.attn.register_forward_hook(
                lambda m, args, out: counts.append(
                    (args[0].shape[-1],
                     None if args[1] is None else args[1].sum(1).tolist())))
    return counts


@pytest.mark.parametrize('size', [(64, 64), (128, 64), (64, 192), (97, 161)])
def test_exact_number_of_tokens_per_image(size):
    keep = 0.56
    _, pruned = pair(keep)
    counts = _attention_token_counts(pruned)
    img_shapes = [size, (size[0] // 2 + 1, size[1] - 31)]
    pruned.set_img_shapes(img_shapes)
    outs = pruned(torch.randn(2, 3, *size))
    assert len(pruned.token_records) == 4
    for record, (slots, real) in zip(pruned.token_records, counts):
        stride = 16
        expected = [math.ceil(keep * math.ceil(h / stride) *
                              math.ceil(w / stride) - 1e-9)
                    for h, w in img_shapes]
        kept_valid = (record.kept & record.valid).flatten(1).sum(1).tolist()
        assert kept_valid == expected
        assert record.kept.flatten(1).sum(1).tolist() == expected
        assert slots == max(expected)
        assert real in (None, expected)
    assert outs[2].shape[-2:] == (math.ceil(size[0] / 16),
                                  math.ceil(size[1] / 16))


def test_stopped_tokens_keep_their_values():
    _, pruned = pair(0.5)
    block = pruned.stages[2].blocks[0]
    mixed, outputs = [], []
    handle = pruned.pruner.register_record_hook(lambda r: None)
    orig_mix = block.mix
    block.mix = lambda x: mixed.append(orig_mix(x)) or mixed[-1]
    pruned.stages[2].blocks[1].register_forward_pre_hook(
        lambda m, args: outputs.append(args[0]))
    pruned.pruner.keep_ratios[1] = 1.0
    pruned(torch.randn(1, 3, 64, 96))
    handle.remove()
    stopped = ~pruned.token_records[0].kept[0]
    assert stopped.any()
    before = mixed[0][0][:, stopped]
    after = outputs[0][0][:, stopped]
    assert torch.equal(before, after)
    kept = pruned.token_records[0].kept[0]
    assert not torch.equal(mixed[0][0][:, kept], outputs[0][0][:, kept])


def test_padded_tokens_never_kept_before_valid():
    _, pruned = pair(0.9, scorer=dict(type='RandomScorer'))
    pruned.set_img_shapes([(64, 64), (40, 24)])
    pruned(torch.randn(2, 3, 64, 64))
    for record in pruned.token_records:
        assert not (record.kept & ~record.valid).any()


def test_cumulative_mode_never_restarts_tokens():
    _, pruned = pair([0.8, 0.7, 0.9, 0.6], mode='cumulative')
    pruned(torch.randn(1, 3, 96, 96))
    records = pruned.token_records
    for prev, cur in [(records[0], records[1]), (records[2], records[3])]:
        assert not (cur.kept & ~prev.kept).any()
    # a later block asking for more tokens keeps at most the active ones
    assert records[1].kept.sum() <= records[0].kept.sum()


def test_gradients_reach_kept_tokens_and_conv_branch():
    _, pruned = pair(0.5)
    pruned.train()
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    sum(o.sum() for o in pruned(x)).backward()
    block = pruned.stages[2].blocks[0]
    assert block.attn.q_conv[0].weight.grad.abs().sum() > 0
    assert block.mlp.fc1_conv.weight.grad.abs().sum() > 0
    assert block.sep_conv.pwconv1[0].weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_lif_with_shared_selection():
    torch.manual_seed(0)
    model = SDTV3(**TINY, num_timesteps=2, spike_cfg=dict(type='LIF'),
                  pruning=dict(keep_ratios=0.5)).eval()
    outs = model(torch.randn(2, 3, 64, 64))
    assert outs[-1].shape == (2, 128, 4, 4)
    kept = model.token_records[0].kept.view(2, 2, -1)
    assert torch.equal(kept[0], kept[1])
    with pytest.raises(ValueError, match='per_timestep'):
        SDTV3(**TINY, num_timesteps=2, spike_cfg=dict(type='LIF'),
              pruning=dict(keep_ratios=0.5, temporal_selection='per_timestep'))


def test_per_timestep_selection_multispike():
    model = SDTV3(**TINY, num_timesteps=3,
                  pruning=dict(keep_ratios=0.5,
                               temporal_selection='per_timestep')).eval()
    x = torch.randn(1, 3, 3, 64, 64)
    model(x)
    assert model.token_records[0].kept.shape == (3, 4, 4)


@pytest.mark.parametrize('pruning,match', [
    (dict(keep_ratios=0.0), r'keep_ratios values must be in \(0, 1\]'),
    (dict(keep_ratios=1.2), r'keep_ratios values must be in \(0, 1\]'),
    (dict(keep_ratios=[0.5, 0.5, 0.5]), 'keep_ratios has 3 values'),
    (dict(keep_ratios=0.5, scorer=dict(type='Oracle')), 'pruning.scorer.type'),
    (dict(keep_ratios=0.5, mode='global'), 'pruning.mode'),
    (dict(keep_ratios=0.5, restorer=dict(type='Nope')), 'pruning.restorer'),
    (dict(keep_ratio=0.5), "unknown key.*keep_ratio"),
])
def test_invalid_pruning_settings_fail_at_build(pruning, match):
    with pytest.raises((ValueError, KeyError), match=match):
        SDTV3(**TINY, pruning=pruning)


def test_keep_ratios_per_stage_expand():
    assert expand_keep_ratios([0.9, 0.5], [6, 2]) == [0.9] * 6 + [0.5] * 2
    assert expand_keep_ratios(0.7, [1, 1]) == [0.7, 0.7]


def test_record_hook_and_removal():
    _, pruned = pair(0.5)
    seen = []
    handle = pruned.pruner.register_record_hook(seen.append)
    pruned(torch.randn(1, 3, 64, 64))
    assert [r.block_name for r in seen] == [
        'stages.2.blocks.0', 'stages.2.blocks.1', 'stages.3.blocks.0',
        'stages.3.blocks.1'
    ]
    handle.remove()
    pruned(torch.randn(1, 3, 64, 64))
    assert len(seen) == 4
