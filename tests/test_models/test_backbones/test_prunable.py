"""The pruning protocol on a toy backbone: any PrunableBackbone whose blocks
expose ``mix`` / ``attention_residual`` / ``mlp_residual`` gets token early
stopping, padding-aware counts and records, with no code of its own."""
import pytest
import torch
import torch.nn as nn

from mmtpspike.models.backbones.prunable import (PrunableBackbone,
                                                 PrunableStage)


class ToyBlock(nn.Module):
    """Conv mixer; 'attention' adds the mean of a projection over the
    (context) tokens; MLP is token-wise."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mixer = nn.Conv2d(channels, channels, 3, padding=1)
        self.attn = nn.Linear(channels, channels)
        self.mlp = nn.Linear(channels, channels)

    def mix(self, x):
        return x + self.mixer(x)

    def attention_residual(self, tokens, token_mask=None, context=None,
                           context_mask=None):
        source, mask = (tokens, token_mask) if context is None else (
            context, context_mask)
        values = self.attn(source.transpose(1, 2))
        if mask is not None:
            values = values * mask.unsqueeze(-1)
        return tokens + values.sum(1).unsqueeze(-1) / 16

    def mlp_residual(self, tokens):
        return tokens + self.mlp(tokens.transpose(1, 2)).transpose(1, 2)

    def transform_tokens(self, tokens, token_mask=None, context=None,
                         context_mask=None):
        return self.mlp_residual(self.attention_residual(
            tokens, token_mask, context, context_mask))

    def forward(self, x):
        x = self.mix(x)
        return self.transform_tokens(x.flatten(2)).view_as(x)


class ToyBackbone(PrunableBackbone):
    """Stride-4 stem, two prunable stages (strides 4 and 8): the layers and
    their list are all a backbone writes."""

    out_indices = (3, 5)

    def __init__(self, pruning=None, channels=6, frozen_stages=-1):
        super().__init__(1, dict(type='MultiSpike'), mask_padding=True)
        self.stem = nn.Conv2d(3, channels, 4, 4)
        self.down = nn.Conv2d(channels, channels, 2, 2)
        self.blocks0 = nn.ModuleList([ToyBlock(channels) for _ in range(2)])
        self.blocks1 = nn.ModuleList([ToyBlock(channels)])
        self.init_pruning(pruning)
        self.init_freezing(frozen_stages, norm_eval=False)

    def forward_stages(self):
        return [PrunableStage(3, 'blocks0', self.blocks0, 4, self.stem),
                PrunableStage(5, 'blocks1', self.blocks1, 8, self.down)]

    def freezable_stages(self):
        second = nn.ModuleList([self.down, self.blocks1])
        return self.stem, [self.blocks0, second]


def toy_pair(**pruning):
    torch.manual_seed(0)
    dense = ToyBackbone().eval()
    pruned = ToyBackbone(dict(pruning)).eval()
    pruned.load_state_dict(dense.state_dict())
    return dense, pruned


def test_keep_one_is_the_dense_backbone():
    dense, pruned = toy_pair(keep_ratios=1.0)
    x = torch.rand(2, 3, 32, 48)
    for a, b in zip(dense(x), pruned(x)):
        assert torch.equal(a, b)


def test_per_stage_ratios_reach_the_right_blocks():
    _, pruned = toy_pair(keep_ratios=[0.5, 1.0])
    pruned(torch.rand(1, 3, 32, 48))
    records = pruned.token_records
    assert [r.block_name for r in records] == [
        'blocks0.0', 'blocks0.1', 'blocks1.0']
    assert [r.stage_index for r in records] == [3, 3, 5]
    assert [int(r.kept.sum()) for r in records] == [48, 48, 24]


def test_stopped_tokens_keep_their_mixed_values():
    _, pruned = toy_pair(keep_ratios=0.5)
    x = torch.rand(1, 3, 16, 16)
    first, second = pruned.blocks0
    block_inputs = []
    mix = second.mix
    second.mix = lambda t: mix(block_inputs.append(t) or t)
    pruned(x)
    kept = pruned.token_records[0].kept.flatten()
    mixed = first.mix(pruned.stem(x)).flatten(2)[0]
    first_out = block_inputs[0].flatten(2)[0]
    assert torch.equal(first_out[:, ~kept], mixed[:, ~kept])
    assert not torch.allclose(first_out[:, kept], mixed[:, kept])


def test_padding_counts_use_each_stage_stride():
    _, pruned = toy_pair(keep_ratios=0.5)
    x = torch.rand(1, 3, 32, 48)
    x[..., 32:] = 0
    pruned.set_img_shapes([(32, 32)], (32, 48))
    pruned(x)
    first, _, last = pruned.token_records
    assert int(first.valid.sum()) == 8 * 8 and int(first.kept.sum()) == 32
    assert int(last.valid.sum()) == 4 * 4 and int(last.kept.sum()) == 8
    assert not bool((first.kept & ~first.valid).any())


def test_forward_runs_each_entry_then_its_blocks():
    """The shared forward equals the stages written out by hand."""
    dense, _ = toy_pair()
    x = torch.rand(2, 3, 32, 48)
    first = dense.stem(x)
    for block in dense.blocks0:
        first = block(first)
    second = dense.blocks1[0](dense.down(first))
    outs = dense(x)
    assert torch.equal(outs[0], first) and torch.equal(outs[1], second)
    dense.out_indices = (5, )
    assert len(dense(x)) == 1 and torch.equal(dense(x)[0], second)


def test_stages_without_blocks_and_unpruned_stages_run_plainly():
    _, pruned = toy_pair(keep_ratios=0.5)
    empty = PrunableStage(7, 'none', nn.ModuleList(), 8, nn.Identity())
    pruned.forward_stages = lambda: ToyBackbone.forward_stages(pruned) + [
        empty]
    pruned.out_indices = (5, 7)
    last, same = pruned(torch.rand(1, 3, 32, 48))
    assert torch.equal(last, same)
    assert [stage.name for stage in pruned.prunable_stages()] == [
        'blocks0', 'blocks1']


@pytest.mark.parametrize('frozen_stages,frozen', [
    (-1, ()), (0, ('stem', )), (1, ('stem', 'blocks0')),
    (2, ('stem', 'blocks0', 'down', 'blocks1'))])
def test_frozen_stages_is_the_embedding_and_the_first_n_stages(
        frozen_stages, frozen):
    model = ToyBackbone(frozen_stages=frozen_stages).train()
    for name, param in model.named_parameters():
        assert param.requires_grad is not name.startswith(frozen), name
    for name, module in model.named_children():
        assert module.training is not name.startswith(frozen), name


@pytest.mark.parametrize('frozen_stages', [-2, 3])
def test_frozen_stages_out_of_range_is_a_clear_error(frozen_stages):
    with pytest.raises(ValueError,
                       match=r'frozen_stages must be in \[-1, 2\], got'):
        ToyBackbone(frozen_stages=frozen_stages)


def test_a_backbone_must_declare_its_prunable_stages():

    class Undeclared(PrunableBackbone):

        def __init__(self):
            super().__init__(1, dict(type='MultiSpike'))
            self.init_pruning(dict(keep_ratios=0.5))

    with pytest.raises(NotImplementedError):
        Undeclared()
    with pytest.raises(KeyError, match='unknown key'):
        ToyBackbone(dict(keep_ratio=0.5))
