"""SDTV1 backbone: shapes, parameter counts, token pruning, errors."""
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from active_network import activate, assert_active
from mmtpspike.models.backbones import SDTV1
from mmtpspike.models.layers import spike_driven
from mmtpspike.models.layers.sdtv1_blocks import SpikeDrivenBlock

# Table 2 of the paper (ImageNet classifier: backbone + 1000-class head)
PAPER_PARAMS_M = {'8-384': 16.81, '8-512': 29.68, '8-768': 66.34}
TINY = dict(embed_dims=32, depth=2, num_timesteps=2)


def active_model(seed=0, size=(64, 96), **kwargs):
    """A tiny SDTV1 whose every layer fires on its test input."""
    torch.manual_seed(seed)
    model = SDTV1(**dict(TINY, **kwargs))
    images = torch.randn(2, 3, *size)
    activate(model, images, seed=seed)
    return model, images


def patch_tokens(model, images):
    """Block input (patch embedding output) averaged over T."""
    return model.merge_timesteps(model.patch_embed(model.to_timesteps(images)))


@pytest.mark.parametrize('arch', sorted(PAPER_PARAMS_M))
def test_param_count_matches_paper(arch):
    model = SDTV1(arch=arch)
    head = model.embed_dims * 1000 + 1000
    params = sum(p.numel() for p in model.parameters()) + head
    assert params / 1e6 == pytest.approx(PAPER_PARAMS_M[arch], rel=0.01)
    assert model.depth == 8


@pytest.mark.parametrize('size', [(64, 96), (50, 33), (16, 16)])
def test_single_stride_16_output(size):
    model = SDTV1(**TINY).eval()
    outs = model(torch.rand(2, 3, *size))
    assert model.out_channels == [32] and model.out_strides == [16]
    assert len(outs) == 1
    assert outs[0].shape == (2, 32, -(-size[0] // 16), -(-size[1] // 16))


def test_test_network_is_active():
    model, images = active_model()
    rates = assert_active(model, images)
    assert set(rates) == {'patch_embed', 'blocks'}


def test_event_frames_and_state_reset():
    model, _ = active_model()
    frames = torch.randn(2, 2, 3, 32, 48)
    first, second = model(frames)[0], model(frames)[0]
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match='T=2'):
        model(torch.rand(2, 4, 3, 32, 48))


def test_keep_one_is_the_dense_backbone_bit_for_bit():
    dense, images = active_model()
    pruned = SDTV1(**TINY, pruning=dict(keep_ratios=1.0)).eval()
    pruned.load_state_dict(dense.state_dict())
    assert torch.equal(dense(images)[0], pruned(images)[0])
    shapes = [(64, 80), (48, 96)]
    for model in (dense, pruned):
        model.set_img_shapes(shapes, images.shape[-2:])
    assert torch.equal(dense(images)[0], pruned(images)[0])


def test_pruning_changes_outputs_and_carries_stopped_tokens():
    dense, images = active_model()
    model = SDTV1(**dict(TINY, depth=1), pruning=dict(keep_ratios=0.5))
    model.load_state_dict(dense.state_dict(), strict=False)
    model.eval()
    dense_one = SDTV1(**dict(TINY, depth=1)).eval()
    dense_one.load_state_dict(model.state_dict())
    out = model(images)[0]
    record = model.token_records[0]
    stopped = ~record.kept.view(2, 2, -1)[0]  # [B, N] of timestep 0
    assert stopped.float().mean() == pytest.approx(0.5, abs=0.05)
    before = patch_tokens(model, images).flatten(2)
    after = out.flatten(2)
    mask = stopped.unsqueeze(1).expand_as(after)
    assert torch.equal(after[mask], before[mask])
    kept = ~mask
    assert not torch.equal(after[kept], before[kept])
    assert not torch.equal(out, dense_one(images)[0])


def test_lif_selection_is_shared_over_timesteps():
    dense, images = active_model()
    model = SDTV1(**TINY, pruning=dict(keep_ratios=0.6)).eval()
    model.load_state_dict(dense.state_dict())
    model(images)
    for record in model.token_records:
        kept = record.kept.view(2, 2, -1)
        assert torch.equal(kept[0], kept[1])
        assert not kept.all()
    with pytest.raises(ValueError, match='per_timestep'):
        SDTV1(**TINY, pruning=dict(keep_ratios=0.6,
                                   temporal_selection='per_timestep'))


def test_padding_aware_tokens():
    dense, images = active_model()
    images[0, :, 40:] = 0
    images[1, :, :, 64:] = 0
    shapes = [(40, 96), (64, 64)]
    model = SDTV1(**TINY, pruning=dict(keep_ratios=0.7)).eval()
    model.load_state_dict(dense.state_dict())
    for backbone in (model, dense):
        backbone.set_img_shapes(shapes, images.shape[-2:])
        out = backbone(images)[0]
        before = patch_tokens(backbone, images)
        assert torch.equal(out[0, :, 3:], before[0, :, 3:])
        assert torch.equal(out[1, :, :, 4:], before[1, :, :, 4:])
        assert not torch.equal(out[0, :, :3], before[0, :, :3])
    for record in model.token_records:
        assert not (record.kept & ~record.valid).any()
        assert record.valid.view(2, 2, 4, 6)[:, 0, 3:].sum() == 0


def test_attention_context_all_changes_outputs():
    dense, images = active_model()
    outs = {}
    for context in ('kept', 'all'):
        model = SDTV1(**TINY, pruning=dict(keep_ratios=0.5,
                                           attention_context=context))
        model.load_state_dict(dense.state_dict())
        outs[context] = model.eval()(images)[0]
    assert not torch.equal(outs['kept'], outs['all'])


@torch.no_grad()
def active_block(seed=0):
    """One block, active on ``[R=2, C=16, 6, 8]`` inputs (T=2, B=1)."""
    torch.manual_seed(seed)
    block = SpikeDrivenBlock(16, dict(type='LIF'),
                             dict(type='LIF', v_threshold=0.5),
                             dict(type='BN'), num_timesteps=2)
    x = torch.randn(2, 16, 6, 8) * 2
    activate(block, x, seed=seed)
    return block, x.flatten(2)


@torch.no_grad()
def test_filler_slots_never_change_other_tokens():
    block, tokens = active_block()
    mask = torch.ones(2, tokens.shape[-1], dtype=torch.bool)
    mask[:, 5] = False
    base = block.transform_tokens(tokens, mask)
    changed = tokens.clone()
    changed[:, :, 5] = torch.randn(2, 16) * 5
    out = block.transform_tokens(changed, mask)
    others = torch.arange(tokens.shape[-1]) != 5
    assert torch.equal(out[..., others], base[..., others])
    # the slot does count without the mask
    assert not torch.equal(block.transform_tokens(changed)[..., others],
                           block.transform_tokens(tokens)[..., others])


@torch.no_grad()
def test_context_gives_the_key_value_sum():
    block, tokens = active_block()
    kept = tokens[..., :20]
    all_valid = torch.ones(2, tokens.shape[-1], dtype=torch.bool)
    # context = every token: the kept tokens see the dense block's sum
    with_context = block.transform_tokens(kept, None, tokens, all_valid)
    assert torch.equal(with_context, block(tokens.view(2, 16, 6, 8)).flatten(
        2)[..., :20])
    assert not torch.equal(with_context, block.transform_tokens(kept))
    # masked context tokens do not contribute
    half = all_valid.clone()
    half[:, 30:] = False
    noisy = tokens.clone()
    noisy[..., 30:] = torch.randn_like(noisy[..., 30:]) * 5
    assert torch.equal(block.transform_tokens(kept, None, tokens, half),
                       block.transform_tokens(kept, None, noisy, half))


def test_frozen_stages_and_norm_eval():
    model = SDTV1(**TINY, frozen_stages=1).train()
    model(torch.randn(2, 3, 32, 32))[0].sum().backward()
    for name, param in model.named_parameters():
        frozen = name.startswith(('patch_embed.', 'blocks.0.'))
        assert param.requires_grad is not frozen, name
        assert (param.grad is None) is frozen, name
    assert not model.blocks[0].training and model.blocks[1].training
    model = SDTV1(**TINY, norm_eval=True).train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='8-1024'), KeyError, 'arch must be one of'),
    (dict(embed_dims=64), ValueError, 'depth is required'),
    (dict(embed_dims=36, depth=2), ValueError, 'divisible by 8'),
    (dict(arch='8-384', depth=0), ValueError, 'depth must be'),
    (dict(arch='8-384', frozen_stages=9), ValueError,
     r'frozen_stages must be in \[-1, 8\]'),
    (dict(arch='8-384', num_timesteps=0), ValueError, 'num_timesteps'),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SDTV1(**kwargs)


def test_bad_input_shape():
    model = SDTV1(**TINY).eval()
    with pytest.raises(ValueError, match=r'\[B, C, H, W\]'):
        model(torch.rand(3, 32, 32))


@torch.no_grad()
def test_every_synapse_reads_binary_spikes():
    model, images = active_model()
    expected = model(images)[0]
    with spike_driven(model, max_spikes=1):
        unrolled = model(images)[0]
    torch.testing.assert_close(unrolled, expected, rtol=1e-5, atol=1e-5)
