"""Tile-granular early stopping in the conv blocks (``pruning.conv_tile``):
whole tiles stop, kept tiles run the channel MLP as dense convs on haloed
tiles, each checked against a dense transcription of what the kept tokens
must compute."""
import math

import pytest
import torch

from active_network import TINY_SDTV3 as TINY
from active_network import active_pair, max_difference
from mmtpspike.models import SDTV3
from mmtpspike.models.pruning import Selection, select_tokens
from mmtpspike.models.pruning.restore import gather_tokens
from mmtpspike.models.pruning.tiles import (TileRows, TileSelection,
                                            pool_tile_scores, tile_any)
from test_speed_options import block_input


def run_conv_block(pruned, dense, x, stage_index, valid_columns=None):
    """One conv block of ``dense`` (float64) run by ``pruned``'s pruner on
    its real input; returns the output, the record, the mixed map and the
    dense transcription (hidden spikes of stopped positions silenced)."""
    stage = dense.stem if stage_index == -1 else dense.stages[stage_index]
    block = stage.blocks[0].double()
    inputs = block_input(dense.double(), x.double(), stage_index)
    name = 'stem.blocks.0' if stage_index == -1 else \
        f'stages.{stage_index}.blocks.0'
    conv_index = pruned.pruner.conv_block_names.index(name)
    rows, _, height, width = inputs.shape
    valid = torch.ones(rows, height, width, dtype=torch.bool)
    if valid_columns is not None:  # the second image is padded on the right
        valid[rows // 2:, :, valid_columns:] = False
    valid = valid.flatten(1)
    with torch.no_grad():
        out, _ = pruned.pruner(block, inputs, conv_index, stage_index, valid,
                               valid.clone(), conv=True)
        record = pruned.pruner.records[-1]
        mask = record.kept.view(rows, 1, height, width).double()
        mixed = block.mix(inputs)
        hidden = block.spike2(block.bn1(block.conv1(block.spike1(mixed))))
        expected = mixed + block.bn2(block.conv2(hidden * mask))
    return out, record, mixed, torch.where(mask.bool(), expected, mixed)


def whole_tiles(kept, valid, tile):
    """Whether ``kept: [R, H, W]`` is a union of whole tiles cut to the
    valid area."""
    rows, height, width = kept.shape
    grid = math.ceil(height / tile), math.ceil(width / tile)
    for row in range(rows):
        for ty in range(grid[0]):
            for tx in range(grid[1]):
                part = (row, slice(ty * tile, (ty + 1) * tile),
                        slice(tx * tile, (tx + 1) * tile))
                inside = kept[part][valid[part]]
                if inside.numel() and inside.any() != inside.all():
                    return False
    return True


@pytest.mark.parametrize('stage_index,tile,valid_columns', [
    (-1, 4, None),   # the stem, 48 x 32: whole tiles
    (0, 3, 13),      # 24 x 16: partial tiles, a padded image
    (1, 5, None),    # 12 x 8: partial tiles
    (1, 2, 5),       # fillers: the padded image keeps fewer tiles
])
def test_kept_tiles_compute_the_dense_block_with_silent_stopped_tokens(
        stage_index, tile, valid_columns):
    """In float64, so that conv rounding cannot move a value across a spike
    threshold."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.5, conv_tile=tile)
    out, record, mixed, expected = run_conv_block(pruned, dense, x, stage_index,
                                                  valid_columns)
    kept = record.kept & record.valid
    assert 0.3 < float(kept.sum() / record.valid.sum()) < 0.7
    assert whole_tiles(record.kept, record.valid, tile)
    assert not (record.kept & ~record.valid).any()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)
    # the MLP changed the kept tokens: the comparison is not vacuous
    changed = (out - mixed).abs().amax(1) > 1e-6
    assert float(changed[kept].float().mean()) > 0.5
    assert not changed[~kept].any()


def test_a_missing_halo_breaks_the_transcription(monkeypatch):
    """The transcription test catches conv2 reading its tiles without the
    neighbours' hidden spikes (the halo ring read as zero)."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.5, conv_tile=4)
    build = TileRows.build.__func__

    def without_halo(cls, selection, halo):
        rows = build(cls, selection, halo)
        side = selection.tile + 2 * halo
        ring = torch.ones(side, side, dtype=torch.bool)
        ring[halo:-halo, halo:-halo] = False
        tiles = rows.hidden_rows.numel() // side**2
        ring_positions = torch.nonzero(ring.flatten().repeat(tiles))
        rows.hidden_dead = torch.cat([rows.hidden_dead,
                                      ring_positions.flatten()]).unique()
        return rows

    monkeypatch.setattr(TileRows, 'build', classmethod(without_halo))
    out, _, _, expected = run_conv_block(pruned, dense, x, -1)
    assert float((out - expected).abs().max()) > 1e-3


def test_training_norms_see_the_kept_tokens_only():
    """In train mode the hidden BN's batch statistics come from the kept
    tokens inside the image: not from filler tiles, positions of partial
    tiles outside the map or padding (which broke fine-tuning when they
    counted)."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.5, conv_tile=5)
    block = dense.stages[0].blocks[0].double()
    inputs = block_input(dense.double(), x.double(), 0)
    rows, _, height, width = inputs.shape
    valid = torch.ones(rows, height, width, dtype=torch.bool)
    valid[1, :, 11:] = False  # padding: 2 tiles of 5 x 5 stay partly valid
    valid = valid.flatten(1)
    conv_index = pruned.pruner.conv_block_names.index('stages.0.blocks.0')
    block.train()
    block.bn1.momentum = 1.0  # running stats := this batch's
    with torch.no_grad():
        pruned.pruner(block, inputs, conv_index, 0, valid, valid.clone(),
                      conv=True)
        kept = pruned.pruner.records[-1].kept.flatten(1)
        hidden = block.conv1(block.spike1(block.mix(inputs)))
    at_kept = hidden.flatten(2).transpose(1, 2)[kept]  # [kept tokens, 4C]
    torch.testing.assert_close(block.bn1.running_mean, at_kept.mean(0))


@pytest.mark.parametrize('memory_format',
                         [torch.contiguous_format, torch.channels_last])
def test_tile_output_keeps_the_memory_format_of_its_input(memory_format):
    """Compiled ops downstream (mmcv's RoIAlign) read a channels-last map
    as NCHW: a contiguous input must give a contiguous output (a
    channels-last one broke the demo detector's boxes)."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.5, conv_tile=4)
    inputs = block_input(dense, x, -1).contiguous(memory_format=memory_format)
    rows, _, height, width = inputs.shape
    everywhere = torch.ones(rows, height * width, dtype=torch.bool)
    with torch.no_grad():
        out, _ = pruned.pruner(dense.stem.blocks[0], inputs, 0, -1,
                               everywhere, everywhere, conv=True)
    assert out.is_contiguous(memory_format=memory_format)


def test_tiles_are_ranked_by_their_mean_valid_score():
    scores = torch.tensor([[1., 2., 9., 9., 0.],
                           [3., 4., 9., 9., 0.],
                           [5., 5., 7., -9., 8.]]).view(1, -1)
    valid = torch.ones_like(scores, dtype=torch.bool)
    valid.view(3, 5)[2, 3] = False  # its score must not count
    pooled, tile_valid = pool_tile_scores(scores, valid, (3, 5), 2)
    # tiles (2 x 2, partial at the bottom and right), row-major
    expected = [[2.5, 9., 0., 5., 7., 8.]]
    torch.testing.assert_close(pooled, torch.tensor(expected))
    assert tile_valid.all()
    assert tile_any(~valid, (3, 5), 2).tolist() == [[False] * 4 +
                                                    [True, False]]


def test_the_ratio_counts_tiles_holding_valid_tokens():
    """``ceil(keep * valid tiles)`` per image: 48 x 32 stem, tile 4 ->
    12 x 8 = 96 tiles; the padded image has 12 x 4 valid tiles."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.3, conv_tile=4)
    _, record, _, _ = run_conv_block(pruned, dense, x, -1, valid_columns=16)
    tiles_kept = record.kept.view(2, 12, 4, 8, 4)[:, :, 0, :, 0]
    assert tiles_kept.flatten(1).sum(1).tolist() == [math.ceil(0.3 * 96),
                                                     math.ceil(0.3 * 48)]


def test_tile_selection_is_shared_by_the_timesteps_with_lif():
    """With a stateful neuron every timestep of an image keeps the same
    tiles (the hidden LIF state runs over T per tile slot)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    model = SDTV3(**TINY, num_timesteps=2,
                  spike_cfg=dict(type='LIF', tau=2.0, v_threshold=0.5),
                  pruning=dict(conv_keep_ratios=0.5, conv_tile=4)).eval()
    with torch.no_grad():
        model(x)
    for record in model.token_records[:3]:
        first, second = record.kept.chunk(2)
        assert torch.equal(first, second), record.block_name


def test_conv_tile_keep_one_is_bitwise_dense():
    dense, pruned, x = active_pair(conv_keep_ratios=1.0, conv_tile=8)
    with torch.no_grad():
        assert max_difference(dense(x), pruned(x)) == 0


def test_tile_macs_count_the_kept_tiles():
    """conv1 / conv2 run ``kept tiles x t^2`` outputs; the stem at tile 4:
    ceil(0.5 * 96) = 48 of 96 tiles per image."""
    from mmtpspike.analysis import count_macs
    dense, pruned, x = active_pair(conv_keep_ratios=0.5, conv_tile=4)
    with torch.no_grad():
        dense_macs = count_macs(dense, x).by_module
        pruned_macs = count_macs(pruned, x).by_module
    for name in ('stem.blocks.0.conv1', 'stem.blocks.0.conv2'):
        assert pruned_macs[name] / dense_macs[name] == pytest.approx(0.5)
    assert pruned_macs['stem.blocks.0.sep_conv.pwconv1.0'] == \
        dense_macs['stem.blocks.0.sep_conv.pwconv1.0']


def test_tile_gradients_equal_the_transcription():
    """Train mode: the gradients of the conv weights through the haloed
    gathers equal those of the dense transcription (float64)."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.5, conv_tile=3)
    block = dense.stages[0].blocks[0].double()
    inputs = block_input(dense.double(), x.double(), 0)
    rows, _, height, width = inputs.shape
    everywhere = torch.ones(rows, height * width, dtype=torch.bool)
    conv_index = pruned.pruner.conv_block_names.index('stages.0.blocks.0')
    out, _ = pruned.pruner(block, inputs, conv_index, 0, everywhere,
                           everywhere, conv=True)
    mask = pruned.pruner.records[-1].kept.view(rows, 1, height,
                                               width).double()
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    got = [p.grad.clone() for p in (block.conv1.weight, block.conv2.weight)]
    block.zero_grad()
    mixed = block.mix(inputs)
    hidden = block.spike2(block.bn1(block.conv1(block.spike1(mixed))))
    expected = mixed + block.bn2(block.conv2(hidden * mask))
    (torch.where(mask.bool(), expected, mixed) * weights).sum().backward()
    for grad, param in zip(got, (block.conv1.weight, block.conv2.weight)):
        assert float(grad.abs().sum()) > 0
        torch.testing.assert_close(grad, param.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('restorer',
                         ['ZeroRestorer', 'NeighbourUpdateRestorer'])
def test_other_restorers_see_the_kept_tiles(restorer):
    """A restorer other than carry-over gets the kept tokens of the tiles,
    as per-token stopping would give them."""
    dense, pruned, x = active_pair(conv_keep_ratios=0.5, conv_tile=4,
                                   restorer=dict(type=restorer))
    out, record, mixed, expected = run_conv_block(pruned, dense, x, -1)
    kept = record.kept.flatten(1)
    index, slot_mask = select_tokens(kept.double(), kept.sum(1), kept)
    selection = Selection(index, slot_mask, record.valid.flatten(1),
                          tuple(record.kept.shape[1:]))
    gathered = gather_tokens(expected.flatten(2), selection)
    want = pruned.pruner.restorer(mixed.flatten(2), gathered, selection)
    torch.testing.assert_close(out.flatten(2), want, rtol=0, atol=1e-9)


def test_tile_selection_kept_map_cuts_partial_tiles():
    tiles = Selection(torch.tensor([[1]]), torch.tensor([[True]]),
                      torch.ones(1, 2, dtype=torch.bool), (1, 2))
    valid = torch.ones(1, 3 * 5, dtype=torch.bool)
    kept = TileSelection(tiles, 3, valid, (3, 5)).kept_map().view(3, 5)
    assert kept.int().tolist() == [[0, 0, 0, 1, 1]] * 3


@pytest.mark.parametrize('pruning,match', [
    (dict(conv_tile=4), 'conv_keep_ratios is unset'),
    (dict(conv_keep_ratios=0.5, conv_tile=1), 'int >= 2'),
    (dict(conv_keep_ratios=0.5, conv_tile=4.0), 'int >= 2'),
    (dict(conv_keep_ratios=0.5, conv_tile=True), 'int >= 2'),
])
def test_bad_conv_tile(pruning, match):
    with pytest.raises(ValueError, match=match):
        SDTV3(**TINY, pruning=pruning)
