"""TokenBlock: the residual split every prunable block shares."""
import torch
import torch.nn as nn

from mmtpspike.models.layers import TokenBlock


class Ones(nn.Module):
    """A branch whose output is all ones, whatever it is given."""

    def forward(self, tokens, *masks_and_context):
        return torch.ones_like(tokens)


class OnesBlock(TokenBlock):

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attn, self.mlp = Ones(), Ones()


def test_stochastic_depth_drops_both_timesteps_of_an_image():
    """Rows are timestep-major (row t * B + b): with T = 2 the two rows of
    each image keep or drop their branch together. With mmcv's per-row
    DropPath (the old TokenBlock) this fails: see
    ``test_drop_path.test_a_per_row_drop_path_would_fail``."""
    num_timesteps, batch = 2, 32
    block = OnesBlock(drop_path=0.5, num_timesteps=num_timesteps).train()
    tokens = torch.zeros(num_timesteps * batch, 4, 6)
    torch.manual_seed(0)
    branch = block.attention_residual(tokens)[:, 0, 0].view(
        num_timesteps, batch)
    assert torch.equal(branch[0], branch[1])
    assert (branch == 0).any() and (branch == 2).any()


def test_dense_forward_is_both_residuals():
    block = OnesBlock().eval()
    x = torch.rand(2, 4, 3, 5)
    assert torch.equal(block(x), x + 2)
