"""QKFormer backbone: sizes, shapes, strides, token pruning, modes."""
import pytest
import torch
from active_network import activate, assert_active
from mmdet.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from mmtpspike.models.backbones import QKFormer
from mmtpspike.models.layers.qkformer_blocks import (QKFormerBlock,
                                                     TokenQKAttention)
from mmtpspike.models.layers.spiking_self_attention import \
    SpikingSelfAttention

#: QKFormer paper / README, classification model with its 1000-class head
PUBLISHED_PARAMS_M = {'10-384': 16.47, '10-512': 29.08, '10-768': 64.96}
TINY = dict(embed_dims=[16, 32, 64], depths=(1, 2, 2), num_heads=2,
            num_timesteps=2)
IMG_SHAPES = [(64, 96), (45, 70)]


def active_model(seed=0, **kwargs):
    """A tiny QKFormer whose every stage fires, and its input."""
    torch.manual_seed(seed)
    x = torch.randn(2, 3, 64, 96)
    model = QKFormer(**dict(TINY, **kwargs))
    activate(model, x, seed=seed)
    return model, x


def twin(model, **kwargs):
    """A QKFormer with other settings and the same weights."""
    other = QKFormer(**dict(TINY, **kwargs)).eval()
    other.load_state_dict(model.state_dict())
    return other


@pytest.mark.parametrize('arch', sorted(PUBLISHED_PARAMS_M))
def test_param_count_matches_paper(arch):
    backbone = QKFormer(arch=arch)
    head = backbone.embed_dims[-1] * 1000 + 1000
    params = sum(p.numel() for p in backbone.parameters()) + head
    assert params / 1e6 == pytest.approx(PUBLISHED_PARAMS_M[arch], rel=0.01)


@pytest.mark.parametrize('size', [(64, 96), (97, 161)])
def test_output_shapes_and_strides(size):
    model = QKFormer(**TINY, with_stride32=True).eval()
    assert model.out_strides == [4, 8, 16, 32]
    assert model.out_channels == [16, 32, 64, 64]
    height, width = size
    with torch.no_grad():
        outs = model(torch.rand(1, 3, height, width))
    for out, channels, stride in zip(outs, model.out_channels,
                                     model.out_strides):
        assert out.shape == (1, channels, -(-height // stride),
                             -(-width // stride))


def test_out_indices_and_registry():
    model = MODELS.build(dict(type='QKFormer', **TINY, out_indices=(2, )))
    assert model.out_strides == [16] and model.out_channels == [64]
    assert len(model.eval()(torch.rand(1, 3, 32, 32))) == 1
    default = QKFormer(**TINY)
    assert default.out_strides == [4, 8, 16]
    assert QKFormer(arch='10-512').embed_dims == [128, 256, 512]


def test_network_is_active():
    model, x = active_model(with_stride32=True)
    rates = assert_active(model, x)
    assert set(rates) == {'stages.0', 'stages.1', 'stages.2', 'stages.3'}


def test_block_forward_is_its_token_path():
    torch.manual_seed(0)
    for attention in ('qkta', 'ssa'):
        block = QKFormerBlock(16, 2, attention, dict(type='LIF'),
                              dict(type='LIF', v_threshold=0.5),
                              dict(type='BN'), num_timesteps=2).eval()
        x = torch.rand(4, 16, 5, 6) * 3
        activate(block, x)
        expected = block.transform_tokens(block.mix(x).flatten(2))
        assert torch.equal(block(x), expected.view_as(x))
        assert not torch.equal(block(x), x)


@pytest.mark.parametrize('img_shapes', [None, IMG_SHAPES])
def test_keep_one_is_bitwise_dense(img_shapes):
    dense, x = active_model()
    pruned = twin(dense, pruning=dict(keep_ratios=1.0))
    with torch.no_grad():
        dense.set_img_shapes(img_shapes)
        expected = dense(x)
        pruned.set_img_shapes(img_shapes)
        outs = pruned(x)
    for a, b in zip(expected, outs):
        assert torch.equal(a, b)
    assert len(pruned.token_records) == sum(TINY['depths'])


def test_pruning_changes_outputs_and_carries_stopped_tokens():
    dense, x = active_model()
    pruned = twin(dense, pruning=dict(keep_ratios=[0.5, 0.7, 0.6]))
    with torch.no_grad():
        expected, outs = dense(x), pruned(x)
    assert all(not torch.equal(a, b) for a, b in zip(expected, outs))
    assert [r.keep_ratio for r in pruned.token_records] == \
        [0.5, 0.7, 0.7, 0.6, 0.6]
    # one QKTA block and one SSA block through the pruner by hand
    runner = pruned.pruner
    with torch.no_grad():
        feats = pruned.to_timesteps(x)
        for index, stage in enumerate(pruned.stages[:3]):
            feats = stage.patch_embed(feats)
            block_index = sum(pruned.depths[:index])
            valid = torch.ones(feats.shape[0], feats[0, 0].numel(),
                               dtype=torch.bool)
            out, _ = runner(stage.blocks[0], feats, block_index, index,
                            valid, valid)
            kept = runner.records[-1].kept.unsqueeze(1).expand_as(feats)
            assert torch.equal(out[~kept], feats[~kept])
            assert not torch.equal(out[kept], feats[kept])
            feats = stage.blocks[0](feats)


def test_padding_aware():
    dense, x = active_model()
    x[1, :, 45:, :] = 0
    x[1, :, :, 70:] = 0
    pruned = twin(dense, pruning=dict(keep_ratios=0.6))
    pruned.set_img_shapes(IMG_SHAPES)
    with torch.no_grad():
        pruned(x)
    records = pruned.token_records
    assert all(not (r.kept & ~r.valid).any() for r in records)
    assert all(r.valid[0].all() and not r.valid[1].all() for r in records)
    for record in records:
        kept = record.kept.flatten(1).sum(1).float()
        valid = record.valid.flatten(1).sum(1).float()
        assert torch.allclose(kept / valid, torch.full_like(kept, 0.6),
                              atol=0.05)
    # without shapes the pruned backbone warns once about the padding
    fresh = twin(dense, pruning=dict(keep_ratios=0.6))
    with pytest.warns(UserWarning, match='PaddingAwarePruningHook'):
        fresh(x)


def test_dense_backbone_keeps_padding_out_of_the_blocks():
    dense, x = active_model(out_indices=(0, ))
    with torch.no_grad():
        entry = dense.merge_timesteps(
            dense.stages[0].patch_embed(dense.to_timesteps(x)))
        dense.set_img_shapes(IMG_SHAPES)
        masked, = dense(x)
        unmasked, = dense(x)  # the shapes were consumed
    padded = torch.zeros_like(masked, dtype=torch.bool)
    padded[1, :, -(-45 // 4):, :] = True  # image 1 is 45 x 70
    padded[1, :, :, -(-70 // 4):] = True
    assert torch.equal(masked[padded], entry[padded])
    assert not torch.equal(unmasked[padded], entry[padded])
    # QKTA is token-wise: masking padding leaves the valid tokens alone
    assert torch.equal(masked[~padded], unmasked[~padded])


def test_lif_selection_shared_over_timesteps():
    model, x = active_model(pruning=dict(keep_ratios=0.5))
    with torch.no_grad():
        model(x)
    for record in model.token_records:
        per_step = record.kept.view(TINY['num_timesteps'], -1,
                                    *record.kept.shape[1:])
        assert all(torch.equal(per_step[0], step) for step in per_step)
        assert not per_step.all()
    with pytest.raises(ValueError, match='same tokens at every timestep'):
        QKFormer(**TINY, pruning=dict(keep_ratios=0.5,
                                      temporal_selection='per_timestep'))


def test_context_all_changes_ssa_and_not_qkta():
    model, x = active_model(pruning=dict(keep_ratios=0.5))
    context = twin(model, pruning=dict(keep_ratios=0.5,
                                       attention_context='all'))
    with torch.no_grad():
        kept, everything = model(x), context(x)
    assert torch.equal(kept[0], everything[0])  # QKTA stages
    assert torch.equal(kept[1], everything[1])
    assert not torch.equal(kept[2], everything[2])  # SSA stage


def active_attention(attention, num_tokens=256):
    """A QKTA / SSA layer whose attention neuron fires, and its input."""
    torch.manual_seed(0)
    attn = attention(16, 2, dict(type='LIF'), dict(type='LIF',
                                                   v_threshold=0.5),
                     dict(type='BN'), num_timesteps=2)
    tokens = torch.rand(4, 16, num_tokens) * 3
    activate(attn, tokens)
    fired = []
    attn.attn_spike.register_forward_hook(
        lambda module, inputs, output: fired.append(float(output.mean())))
    with torch.no_grad():
        attn(tokens)
    assert fired[0] > 0.05, fired
    return attn, tokens


def attention_output(attn, tokens, filler, **kwargs):
    mask = torch.ones(tokens.shape[0], tokens.shape[2] + 1, dtype=torch.bool)
    mask[:, -1] = False
    with torch.no_grad():
        return attn(torch.cat([tokens, filler], 2), mask, **kwargs)[..., :-1]


@pytest.mark.parametrize('attention', [TokenQKAttention, SpikingSelfAttention])
def test_filler_slot_never_changes_other_tokens(attention):
    attn, tokens = active_attention(attention)
    tokens = tokens[..., :-1]
    first = attention_output(attn, tokens, torch.zeros(4, 16, 1))
    second = attention_output(attn, tokens, torch.full((4, 16, 1), 3.))
    assert torch.equal(first, second) and first.any()


def test_ssa_takes_keys_and_values_from_the_context():
    attn, tokens = active_attention(SpikingSelfAttention)
    everything = torch.ones(4, tokens.shape[2], dtype=torch.bool)
    with torch.no_grad():
        alone = attn(tokens[..., :16])
        with_context = attn(tokens[..., :16], context=tokens,
                            context_mask=everything)
        full = attn(tokens)
        padded = everything.clone()
        padded[:, 160:] = False
        masked = attn(tokens[..., :16], context=tokens, context_mask=padded)
        cut = attn(tokens[..., :16], context=tokens[..., :160])
    assert torch.equal(with_context, full[..., :16])
    assert not torch.equal(alone, with_context)
    assert torch.equal(masked, cut) and not torch.equal(masked, full[..., :16])
    # QKTA ignores the context
    qkta, tokens = active_attention(TokenQKAttention)
    with torch.no_grad():
        assert torch.equal(qkta(tokens[..., :16]),
                           qkta(tokens[..., :16], context=tokens,
                                context_mask=everything))


def test_two_forwards_identical_and_event_frames():
    model, x = active_model()
    with torch.no_grad():
        first, second = model(x), model(x)
        frames = model(x.unsqueeze(1).repeat(1, 2, 1, 1, 1))
    for a, b, c in zip(first, second, frames):
        assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(ValueError, match='T=2'):
        model(torch.rand(2, 4, 3, 64, 64))
    with pytest.raises(ValueError, match=r'\[B, C, H, W\]'):
        model(torch.rand(3, 64, 64))


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(embed_dims=[16, 32]), ValueError, '3 values'),
    (dict(embed_dims=[16, 32, 66], num_heads=4), ValueError, 'divisible'),
    (dict(depths=(1, 0, 2)), ValueError, 'at least one block'),
    (dict(out_indices=(3, )), ValueError, 'with_stride32=True'),
    (dict(num_timesteps=0), ValueError, 'num_timesteps'),
    (dict(frozen_stages=4), ValueError, 'frozen_stages'),
    (dict(pruning=dict(keep_ratios=[0.5, 0.5])), ValueError, 'keep_ratios'),
    (dict(spike_cfg=dict(type='IF')), KeyError, 'spike_cfg.type'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        QKFormer(**dict(TINY, **kwargs))


def test_unknown_arch():
    with pytest.raises(KeyError, match='arch must be one of'):
        QKFormer(arch='10-1024')


def test_missing_pretrained_checkpoint_is_a_clear_error(tmp_path):
    model = QKFormer(**TINY, init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'absent.pth')))
    with pytest.raises(FileNotFoundError, match='init_cfg.checkpoint'):
        model.init_weights()


def test_frozen_stages_get_no_gradient():
    model = QKFormer(**TINY, frozen_stages=1).train()
    sum(o.sum() for o in model(torch.rand(2, 3, 32, 32))).backward()
    for name, param in model.named_parameters():
        frozen = name.startswith('stages.0.')
        assert param.requires_grad is not frozen, name
    assert not model.stages[0].training and model.stages[1].training
    stem_only = QKFormer(**TINY, frozen_stages=0).train()
    assert not stem_only.stages[0].patch_embed.training
    assert stem_only.stages[0].blocks.training
    everything = QKFormer(**TINY, with_stride32=True, frozen_stages=4)
    assert not any(p.requires_grad for p in everything.parameters())


def test_norm_eval():
    model = QKFormer(**TINY, norm_eval=True).train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    assert model.training


def test_attention_token_operations_are_counted():
    from mmtpspike.analysis.complexity import MacCounter
    model, x = active_model(pruning=dict(keep_ratios=0.5,
                                         attention_context='all'))
    qkta = model.stages[0].blocks[0].attn
    ssa = model.stages[2].blocks[0].attn
    tokens, context = torch.rand(4, 64, 12), torch.rand(4, 64, 24)
    per_token = 4 * 64 * 64 // 2  # R C^2 / h
    assert ssa.matmul_macs(tokens) == [(12 * per_token, ssa.k.lif),
                                       (12 * per_token, ssa.q.lif)]
    assert [m for m, _ in ssa.matmul_macs(tokens, context)] == [
        24 * per_token, 12 * per_token]
    assert qkta.matmul_macs(tokens[:, :16], context[:, :16]) == [
        (4 * 12 * 16, qkta.q_spike), (4 * 12 * 16, qkta.attn_spike)]
    with torch.no_grad(), MacCounter(model, max_spikes=1) as counter:
        model(x)
    rows = 2 * TINY['num_timesteps']
    # SSA at stride 16 (4 x 6 tokens): all 24 give keys / values, 12 query
    assert counter.by_module['stages.2.blocks.0.attn.matmul'] == \
        rows * 64 * 64 // 2 * (24 + 12)
    # QKTA at stride 4 (16 x 24 tokens), half of them kept
    assert counter.by_module['stages.0.blocks.0.attn.matmul'] == \
        2 * rows * 192 * 16
