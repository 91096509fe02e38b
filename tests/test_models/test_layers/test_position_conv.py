"""PositionConv2d: a conv evaluated at chosen positions equals the dense
conv there (map input) or the dense conv of the map that is zero away from
those positions (token input), forward and backward."""
import pytest
import torch

from mmtpspike.models.layers.position_conv import PositionConv2d

ROWS, CHANNELS, OUT, HEIGHT, WIDTH, KEPT = 3, 5, 7, 6, 9, 20


def pick(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``[R, C, H, W]`` -> ``[R, C, K]`` at ``index``."""
    flat = values.flatten(2)
    return flat.gather(2, index[:, None].expand(-1, flat.shape[1], -1))


@pytest.fixture
def index():
    generator = torch.Generator().manual_seed(0)
    return torch.stack([
        torch.randperm(HEIGHT * WIDTH, generator=generator)[:KEPT].sort()[0]
        for _ in range(ROWS)
    ])


@pytest.mark.parametrize('kernel_size', [3, 5])
@pytest.mark.parametrize('bias', [False, True])
def test_map_input_equals_dense_conv_at_positions(index, kernel_size, bias):
    torch.manual_seed(0)
    conv = PositionConv2d(CHANNELS, OUT, kernel_size, bias=bias)
    x = torch.randn(ROWS, CHANNELS, HEIGHT, WIDTH)
    out = conv(x, index)
    assert out.shape == (ROWS, OUT, KEPT)
    torch.testing.assert_close(out, pick(conv(x), index))


@pytest.mark.parametrize('kernel_size', [3, 5])
def test_token_input_equals_dense_conv_of_sparse_map(index, kernel_size):
    torch.manual_seed(0)
    conv = PositionConv2d(CHANNELS, OUT, kernel_size, bias=True)
    x = torch.randn(ROWS, CHANNELS, HEIGHT, WIDTH)
    mask = torch.zeros(ROWS, HEIGHT * WIDTH).scatter(1, index, 1.)
    sparse_map = x * mask.view(ROWS, 1, HEIGHT, WIDTH)
    out = conv(pick(x, index), index, spatial_shape=(HEIGHT, WIDTH))
    torch.testing.assert_close(out, pick(conv(sparse_map), index))


def test_channels_last_input_and_backward_match_dense(index):
    torch.manual_seed(0)
    conv = PositionConv2d(CHANNELS, OUT, 3)
    x = torch.randn(ROWS, CHANNELS, HEIGHT, WIDTH)
    x_last = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    x_dense = x.clone().requires_grad_()
    conv(x_last, index).square().sum().backward()
    weight_grad = conv.weight.grad.clone()
    conv.weight.grad = None
    pick(conv(x_dense), index).square().sum().backward()
    torch.testing.assert_close(x_last.grad, x_dense.grad)
    torch.testing.assert_close(weight_grad, conv.weight.grad)


def test_filler_slots_contribute_nothing(index):
    """A filler slot (index N, slot_mask False) must not spread its value
    into kept outputs."""
    torch.manual_seed(0)
    conv = PositionConv2d(CHANNELS, OUT, 3)
    x = torch.randn(ROWS, CHANNELS, HEIGHT, WIDTH)
    tokens = pick(x, index)
    padded_index = torch.cat(
        [index, torch.full((ROWS, 2), HEIGHT * WIDTH)], 1)
    padded_tokens = torch.cat([tokens, 100 * torch.ones(ROWS, CHANNELS, 2)],
                              2)
    slot_mask = padded_index < HEIGHT * WIDTH
    out = conv(padded_tokens, padded_index, slot_mask, (HEIGHT, WIDTH))
    expected = conv(tokens, index, spatial_shape=(HEIGHT, WIDTH))
    torch.testing.assert_close(out[..., :KEPT], expected)


def test_clear_errors(index):
    with pytest.raises(ValueError, match='odd kernel_size'):
        PositionConv2d(CHANNELS, OUT, 2)
    conv = PositionConv2d(CHANNELS, OUT, 3)
    with pytest.raises(ValueError, match='spatial_shape'):
        conv(torch.randn(ROWS, CHANNELS, KEPT), index)


def test_state_dict_keys_are_those_of_conv2d():
    conv = PositionConv2d(CHANNELS, OUT, 3)
    assert set(conv.state_dict()) == set(
        torch.nn.Conv2d(CHANNELS, OUT, 3, bias=False).state_dict())
