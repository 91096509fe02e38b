"""Early stopping where the work is: stopped tokens skip the SepConv mixer's
pointwise convs (``skip_mixer``), and the convolutional stages stop tokens
(``conv_keep_ratios``), each checked against a dense transcription of what
the kept tokens must compute."""
import pytest
import torch

from active_network import TINY_SDTV3 as TINY
from active_network import active_pair, max_difference
from mmtpspike.models import SDTV3
from mmtpspike.models.backbones import QKFormer
from mmtpspike.models.pruning import Selection
from mmtpspike.models.pruning.restore import gather_tokens, scatter_tokens


def block_input(model, x, stage_index):
    """The input of the first block of a stage (-1: the stem)."""
    with torch.no_grad():
        y = model.stem.downsample(model.to_timesteps(x))
        if stage_index == -1:
            return y
        y = model.stem.blocks[0](y)
        for index in range(stage_index + 1):
            y = model.stages[index].downsample(y)
            if index < stage_index:
                for block in model.stages[index].blocks:
                    y = block(y)
        return y


def random_selection(rows, height, width, kept):
    generator = torch.Generator().manual_seed(1)
    index = torch.stack([
        torch.randperm(height * width, generator=generator)[:kept].sort()[0]
        for _ in range(rows)
    ])
    return Selection(index, torch.ones_like(index, dtype=torch.bool),
                     torch.ones(rows, height * width, dtype=torch.bool),
                     (height, width))


def kept_mask(selection, like):
    rows, _, height, width = like.shape
    mask = torch.zeros(rows, height * width).scatter(1, selection.index, 1.)
    return mask.view(rows, 1, height, width)


# -- skip_mixer ----------------------------------------------------------------

def test_sparse_mixer_equals_dense_mixer_with_silent_stopped_tokens():
    """Kept tokens get the SepConv output of a map in which the stopped
    tokens emit no spikes after the first pointwise conv."""
    dense, _, x = active_pair()
    block = dense.stages[2].blocks[0]
    inputs = block_input(dense, x, 2)
    selection = random_selection(inputs.shape[0], *inputs.shape[2:], 10)
    sep = block.sep_conv
    with torch.no_grad():
        hidden = sep.spike2(sep.pwconv1(sep.spike1(inputs)))
        hidden = hidden * kept_mask(selection, hidden)
        expected = sep.pwconv2(sep.spike3(sep.dwconv(hidden)))
        expected = inputs + expected
        got = block.mix_at(inputs, selection)
        full = block.mix(inputs)
    torch.testing.assert_close(
        got, gather_tokens(expected.flatten(2), selection), rtol=0,
        atol=1e-5)
    # silencing the stopped tokens matters: the full-map mixer differs
    assert float((gather_tokens(full.flatten(2), selection) -
                  got).abs().max()) > 1e-2


def test_skip_mixer_stopped_tokens_keep_their_input():
    _, pruned, x = active_pair(keep_ratios=0.5, skip_mixer=True)
    block = pruned.stages[2].blocks[0]
    inputs = block_input(pruned, x, 2)
    rows, _, height, width = inputs.shape
    everywhere = torch.ones(rows, height * width, dtype=torch.bool)
    with torch.no_grad():
        out, _ = pruned.pruner(block, inputs, 0, 2, everywhere, everywhere)
    stopped = ~pruned.pruner.records[-1].kept
    changed = (out - inputs).abs().amax(1)
    assert bool(stopped.any())
    assert float(changed[stopped].max()) == 0
    assert float(changed[~stopped].min()) > 0


def test_skip_mixer_at_every_token_is_dense():
    dense, pruned, x = active_pair(keep_ratios=0.9999, skip_mixer=True)
    with torch.no_grad():
        assert max_difference(dense(x), pruned(x)) <= 1e-5


def test_skip_mixer_changes_pruned_outputs():
    _, plain, x = active_pair(keep_ratios=0.5)
    _, skipping, _ = active_pair(keep_ratios=0.5, skip_mixer=True)
    with torch.no_grad():
        assert max_difference(plain(x), skipping(x)) > 1e-2


# -- conv_keep_ratios ----------------------------------------------------------

@pytest.mark.parametrize('stage_index,block_name', [(-1, 'stem.blocks.0'),
                                                    (1, 'stages.1.blocks.0')])
def test_conv_block_runs_its_mlp_at_kept_positions_only(stage_index,
                                                        block_name):
    """Kept positions: the dense block with the hidden spikes of stopped
    positions silenced; stopped positions: the mixer's output. In float64,
    so that GEMM and conv rounding cannot move a value across a spike
    threshold."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.5)
    stage = dense.stem if stage_index == -1 else dense.stages[stage_index]
    block = stage.blocks[0].double()
    inputs = block_input(dense.double(), x.double(), stage_index)
    conv_index = pruned.pruner.conv_block_names.index(block_name)
    rows, _, height, width = inputs.shape
    everywhere = torch.ones(rows, height * width, dtype=torch.bool)
    with torch.no_grad():
        out, _ = pruned.pruner(block, inputs, conv_index, stage_index,
                               everywhere, everywhere, conv=True)
        kept = pruned.pruner.records[-1].kept
        mask = kept.view(rows, 1, height, width).double()
        mixed = block.mix(inputs)
        hidden = block.spike2(block.bn1(block.conv1(block.spike1(mixed))))
        expected = mixed + block.bn2(block.conv2(hidden * mask))
    assert 0.45 < float(kept.float().mean()) < 0.55
    expected = torch.where(mask.bool(), expected, mixed)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


def test_conv_keep_one_is_bitwise_dense():
    dense, pruned, x = active_pair(conv_keep_ratios=1.0)
    with torch.no_grad():
        assert max_difference(dense(x), pruned(x)) == 0


def test_conv_stopping_records_and_ratios_per_stage():
    _, pruned, x = active_pair(keep_ratios=0.78,
                               conv_keep_ratios=[0.9, 0.7, 0.5])
    with torch.no_grad():
        pruned(x)
    ratios = {r.block_name: r.realised_keep_ratio
              for r in pruned.token_records}
    assert ratios['stem.blocks.0'] == pytest.approx(0.9, abs=0.01)
    assert ratios['stages.0.blocks.0'] == pytest.approx(0.7, abs=0.01)
    assert ratios['stages.1.blocks.0'] == pytest.approx(0.5, abs=0.01)
    # ceil(0.78 * 24) of the 24 tokens per image
    assert ratios['stages.2.blocks.0'] == pytest.approx(19 / 24)
    assert [r.stage_index for r in pruned.token_records][:2] == [-1, 0]


def test_conv_stopping_saves_the_conv_mlp_macs():
    from mmtpspike.analysis import count_macs
    dense, pruned, x = active_pair(conv_keep_ratios=0.5)
    with torch.no_grad():
        dense_macs = count_macs(dense, x).by_module
        pruned_macs = count_macs(pruned, x).by_module
    for name in ('stem.blocks.0.conv1', 'stages.1.blocks.0.conv2'):
        assert pruned_macs[name] / dense_macs[name] == pytest.approx(
            0.5, abs=0.01)
    assert pruned_macs['stem.blocks.0.sep_conv.pwconv1.0'] == \
        dense_macs['stem.blocks.0.sep_conv.pwconv1.0']


@pytest.mark.parametrize('conv_tile', [None, 4])
def test_conv_stopping_trains(conv_tile):
    _, pruned, x = active_pair(keep_ratios=0.5, conv_keep_ratios=0.5,
                               conv_tile=conv_tile, skip_mixer=True)
    pruned.train()
    sum(out.mean() for out in pruned(x)).backward()
    for name in ('stem.blocks.0.conv1.weight', 'stages.1.blocks.0.conv2.weight',
                 'stages.2.blocks.0.sep_conv.pwconv1.0.weight'):
        grad = dict(pruned.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


@pytest.mark.parametrize('conv_tile', [None, 4])
def test_fused_channels_last_pruning_equals_eval_mode(conv_tile):
    """In float64: in float32 the folded BN's rounding moves pre-activations
    of the active network across multi-spike rounding steps (5 % of stage 1
    differed on an AMD EPYC's oneDNN kernels), and a flipped spike changes
    every selection after it; float64 leaves the fused network equal to
    eval mode up to 1e-13, so any folding error shows. Per-token and
    tile-granular conv stopping alike."""
    _, pruned, x = active_pair(keep_ratios=0.5, conv_keep_ratios=0.5,
                               conv_tile=conv_tile, skip_mixer=True)
    pruned, x = pruned.double(), x.double()
    with torch.no_grad():
        expected = pruned(x)
        pruned.fuse()
        got = pruned(x.contiguous(memory_format=torch.channels_last))
    assert max_difference(expected, got) <= 1e-10


@pytest.mark.parametrize('pruning,match', [
    (dict(skip_mixer=True, score_on='mixed'), "score_on='input'"),
    (dict(conv_keep_ratios=[0.5, 0.5]), 'conv_keep_ratios has 2 values'),
    (dict(conv_keep_ratios=1.5), r'conv_keep_ratios values must be in'),
    (dict(conv_keep_ratios=0.5, dynamic=dict(mass=0.9)), 'transformer'),
])
def test_bad_speed_options(pruning, match):
    with pytest.raises(ValueError, match=match):
        SDTV3(**TINY, pruning=pruning)


def test_conv_keep_ratios_on_a_backbone_without_conv_blocks():
    with pytest.raises(ValueError, match='no convolutional blocks'):
        QKFormer(embed_dims=[16, 32, 64], depths=(1, 1, 1), num_heads=2,
                 pruning=dict(conv_keep_ratios=0.5))


# -- token-major gather / scatter ---------------------------------------------

@pytest.mark.parametrize('fillers', [False, True])
def test_token_major_gather_and_scatter_equal_the_plain_ones(fillers):
    torch.manual_seed(0)
    tokens = torch.randn(3, 6, 20)
    token_major = tokens.transpose(1, 2).contiguous().transpose(1, 2)
    index = torch.stack([torch.randperm(20)[:7] for _ in range(3)])
    slot_mask = torch.ones_like(index, dtype=torch.bool)
    if fillers:
        index[0, -2:] = 20
        slot_mask[0, -2:] = False
    selection = Selection(index, slot_mask,
                          torch.ones(3, 20, dtype=torch.bool), (4, 5))
    kept = torch.randn(3, 6, 7)
    torch.testing.assert_close(gather_tokens(token_major, selection),
                               gather_tokens(tokens, selection))
    plain = scatter_tokens(tokens, kept, selection)
    fast = scatter_tokens(token_major, kept, selection)
    torch.testing.assert_close(fast, plain)
    assert fast.transpose(1, 2).is_contiguous()
