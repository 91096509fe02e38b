"""Spikformer backbone: shapes, parameter counts, token pruning."""
import math

import pytest
import torch

from active_network import activate, assert_active
from mmtpspike.models.backbones import Spikformer
from mmdet.registry import MODELS

# attn_scale 1.0: the public 0.125 suits 196 tokens of 64 channels per head;
# with 24 tokens of 8 channels q k^T v * 0.125 never reaches the attention
# neuron's threshold, and the attention tests would test nothing
TINY = dict(embed_dims=32, depth=2, num_heads=4, num_timesteps=2,
            attn_scale=1.0)
PAPER_PARAMS_M = {'8-384': 16.81, '8-512': 29.68, '8-768': 66.34}
NUM_CLASSES = 1000


def active_pair(size=(64, 96), batch=2, **pruning):
    """An activated dense tiny Spikformer, a pruned copy and an input."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, *size)
    dense = activate(Spikformer(**TINY), x)
    pruned = Spikformer(**TINY, pruning=pruning or None).eval()
    pruned.load_state_dict(dense.state_dict())
    return dense, pruned, x


def max_difference(outs_a, outs_b) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(outs_a, outs_b))


@pytest.mark.parametrize('arch', sorted(PAPER_PARAMS_M))
def test_param_count_matches_paper(arch):
    """The paper counts the classifier: backbone + a 1000-class head."""
    model = Spikformer(arch=arch)
    head = model.embed_dims * NUM_CLASSES + NUM_CLASSES
    params = (sum(p.numel() for p in model.parameters()) + head) / 1e6
    assert params == pytest.approx(PAPER_PARAMS_M[arch], rel=0.01)


@pytest.mark.parametrize('size', [(64, 96), (72, 100), (17, 33)])
def test_output_shape_and_stride(size):
    model = Spikformer(**TINY).eval()
    outs = model(torch.rand(2, 3, *size))
    assert model.out_channels == [32] and model.out_strides == [16]
    assert len(outs) == 1
    assert outs[0].shape == (2, 32, math.ceil(size[0] / 16),
                             math.ceil(size[1] / 16))


def test_build_from_registry_and_arch_overrides():
    model = MODELS.build(dict(type='Spikformer', arch='8-512', depth=1))
    assert (model.embed_dims, model.depth, model.num_heads) == (512, 1, 8)
    assert [s.name for s in model.prunable_stages()] == ['blocks']


def test_network_is_active():
    dense, _, x = active_pair()
    rates = assert_active(dense, x)
    assert set(rates) == {'patch_embed', 'blocks'}
    attention = []
    for block in dense.blocks:
        block.attn.attn_spike.register_forward_hook(
            lambda m, args, out: attention.append(float(out.mean())))
    with torch.no_grad():
        dense(x)
    assert len(attention) == 2 and min(attention) > 0.05, attention


@pytest.mark.parametrize('padded', [False, True])
def test_keep_one_is_bitwise_dense(padded):
    dense, pruned, x = active_pair(keep_ratios=1.0)
    shapes = [(64, 96), (40, 70) if padded else (64, 96)]
    dense.set_img_shapes(shapes)
    pruned.set_img_shapes(shapes)
    with torch.no_grad():
        expected, = dense(x)
        got, = pruned(x)
    assert torch.equal(expected, got)
    assert float(expected.abs().max()) > 0


def test_pruning_changes_outputs_and_carries_stopped_tokens():
    dense, pruned, x = active_pair(keep_ratios=[0.5, 1.0])
    block_inputs = []
    pruned.patch_embed.register_forward_hook(
        lambda m, args, out: block_inputs.append(out))
    pruned.blocks[1].register_forward_pre_hook(
        lambda m, args: block_inputs.append(args[0]))
    with torch.no_grad():
        assert max_difference(dense(x), pruned(x)) > 0.1
    before, after = (t.flatten(2) for t in block_inputs)
    kept = pruned.token_records[0].kept.flatten(1)  # [T * B, N]
    assert kept.sum(1).tolist() == [math.ceil(0.5 * 24)] * 4
    stopped = ~kept.unsqueeze(1).expand_as(before)
    assert torch.equal(before[stopped], after[stopped])
    assert not torch.equal(before[~stopped], after[~stopped])


def test_padding_aware():
    dense, pruned, x = active_pair(keep_ratios=0.6)
    x[1, :, 40:] = 0
    x[1, :, :, 50:] = 0
    shapes = [(64, 96), (40, 50)]
    embedded = []
    pruned.patch_embed.register_forward_hook(
        lambda m, args, out: embedded.append(out))
    pruned.set_img_shapes(shapes)
    with torch.no_grad():
        out, = pruned(x)
    valid = pruned.token_records[0].valid
    for record in pruned.token_records:
        assert not (record.kept & ~record.valid).any()
        assert record.kept.flatten(1).sum(1).tolist() == \
            [math.ceil(0.6 * 24), math.ceil(0.6 * 12)] * 2
    # padded tokens never enter a block: they keep the patch embedding
    padded = ~valid[1]
    embedding = pruned.merge_timesteps(embedded[0])[1]
    assert padded.sum() == 24 - 12
    assert torch.equal(out[1][:, padded], embedding[:, padded])
    # ... and give no keys / values to the valid ones (dense backbone)
    dense.set_img_shapes(shapes)
    with torch.no_grad():
        masked, = dense(x)
        unmasked, = dense(x)  # no shapes: padding counts as image
    inside = valid[1]
    assert torch.equal(masked[0], unmasked[0])
    assert float((masked[1][:, inside] - unmasked[1][:, inside]).abs().max(
    )) > 0.1


def test_lif_selection_shared_over_timesteps():
    _, pruned, x = active_pair(keep_ratios=0.5)
    with torch.no_grad():
        pruned(x)
    for record in pruned.token_records:
        kept = record.kept.view(2, 2, -1)  # [T, B, N]
        assert torch.equal(kept[0], kept[1])
        assert not kept.all()
    with pytest.raises(ValueError, match='per_timestep'):
        Spikformer(**TINY, pruning=dict(keep_ratios=0.5,
                                        temporal_selection='per_timestep'))


def _kept_tokens(tokens, index):
    """Gather ``[R, C, N]`` at ``[R, K]`` token indices."""
    return tokens.gather(2, index.unsqueeze(1).expand(-1, tokens.shape[1],
                                                      -1))


def test_context_keys_values_from_all_tokens():
    dense, _, _ = active_pair()
    block = dense.blocks[0]
    torch.manual_seed(1)
    tokens = torch.randn(2 * 2, 32, 24).abs() * 2  # [T * B, C, N]
    index = torch.tensor([[0, 3, 4, 10, 17], [1, 2, 8, 9, 23]]).repeat(2, 1)
    kept = _kept_tokens(tokens, index)
    with torch.no_grad():
        full = block.attention_residual(tokens)
        with_context = block.attention_residual(kept, context=tokens)
        alone = block.attention_residual(kept)
    expected = _kept_tokens(full, index)
    assert torch.equal(with_context, expected)
    assert float((alone - expected).abs().max()) > 0.5


def test_attention_context_all_changes_outputs():
    _, kept_only, x = active_pair(keep_ratios=0.5)
    _, with_context, _ = active_pair(keep_ratios=0.5,
                                     attention_context='all')
    with torch.no_grad():
        assert max_difference(kept_only(x), with_context(x)) > 0.1


@pytest.mark.parametrize('context', [False, True])
def test_filler_slot_never_changes_other_tokens(context):
    dense, _, _ = active_pair()
    block = dense.blocks[0]
    torch.manual_seed(2)
    tokens = torch.randn(4, 32, 6).abs() * 2  # [T * B, C, K]
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[:, -1] = False  # the last slot is a filler
    extra = dict(context=torch.randn(4, 32, 9).abs() * 2,
                 context_mask=torch.ones(4, 9, dtype=torch.bool)) \
        if context else {}
    outputs = []
    with torch.no_grad():
        for scale in (0., 5., 50.):
            filled = tokens.clone()
            filled[:, :, -1] = scale
            outputs.append(block.transform_tokens(filled, mask, **extra))
        without = block.transform_tokens(tokens[:, :, :-1], **extra)
    for out in outputs:
        assert torch.equal(out[:, :, :-1], outputs[0][:, :, :-1])
        assert torch.equal(out[:, :, :-1], without)
    if not context:  # the filler's keys would have changed the others
        unmasked = block.transform_tokens(filled)
        assert not torch.equal(unmasked[:, :, :-1], without)


def test_two_forwards_identical_and_event_frames():
    model = Spikformer(**TINY, in_channels=2).eval()
    frames = torch.rand(3, 2, 2, 32, 48)  # [B, T, C, H, W]
    first, = model(frames)
    second, = model(frames)
    assert first.shape == (3, 32, 2, 3) and torch.equal(first, second)
    with pytest.raises(ValueError, match=r'\[B, T=2, C, H, W\]'):
        model(torch.rand(3, 4, 2, 32, 48))
    with pytest.raises(ValueError, match='expects'):
        model(torch.rand(2, 32, 48))


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='8-256'), KeyError, "arch must be one of.*'8-384'"),
    (dict(embed_dims=36, num_heads=4), ValueError, 'divisible by 8'),
    (dict(embed_dims=32, num_heads=5), ValueError, 'num_heads'),
    (dict(depth=0), ValueError, 'depth must be >= 1'),
    (dict(num_timesteps=0), ValueError, 'num_timesteps'),
    (dict(depth=2, frozen_stages=3), ValueError, 'frozen_stages'),
    (dict(depth=1, pruning=dict(keep=0.5)), KeyError, 'unknown key'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Spikformer(**kwargs)


def test_frozen_stages_get_no_gradient():
    model = Spikformer(**TINY, frozen_stages=1).train()
    x = torch.randn(2, 3, 32, 48)
    model(x)[0].sum().backward()
    for name, param in model.named_parameters():
        frozen = name.startswith(('patch_embed.', 'blocks.0.'))
        assert param.requires_grad is not frozen, name
        assert (param.grad is None) is frozen, name
    assert not model.patch_embed.training and not model.blocks[0].training
    assert model.blocks[1].training


def test_norm_eval():
    model = Spikformer(**TINY, norm_eval=True).train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    assert model.training


def test_attention_matmul_macs_are_counted():
    from mmtpspike.analysis.complexity import MacCounter
    _, pruned, x = active_pair(keep_ratios=0.5, attention_context='all')
    attn = pruned.blocks[0].attn
    tokens, context = torch.rand(4, 32, 12), torch.rand(4, 32, 24)
    per_token = 4 * 32 * 32 // 4  # R C^2 / h
    assert attn.matmul_macs(tokens) == [(12 * per_token, attn.k.lif),
                                        (12 * per_token, attn.q.lif)]
    assert [m for m, _ in attn.matmul_macs(tokens, context)] == [
        24 * per_token, 12 * per_token]
    with torch.no_grad(), MacCounter(pruned, max_spikes=1) as counter:
        pruned(x)
    # 24 tokens give keys and values, the 12 kept ones query
    assert counter.by_module['blocks.0.attn.matmul'] == 36 * per_token
