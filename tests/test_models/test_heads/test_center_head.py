"""CenterHead: score / size / offset maps, decoding and losses."""
import pytest
import torch

from mmtpspike.models.heads import CenterHead


def planted_maps(cell=(5, 2), offset=(0.25, 0.75), size=(0.3, 0.2),
                 shape=(8, 10)):
    """Maps ``[1, K, H, W]`` with one score peak at ``cell = (col, row)``."""
    height, width = shape
    score = torch.rand(1, 1, height, width) * 0.5
    score[0, 0, cell[1], cell[0]] = 0.9
    size_map = torch.rand(1, 2, height, width)
    size_map[0, :, cell[1], cell[0]] = torch.tensor(size)
    offset_map = torch.rand(1, 2, height, width)
    offset_map[0, :, cell[1], cell[0]] = torch.tensor(offset)
    return score, size_map, offset_map


def test_decode_planted_peak():
    box = CenterHead.decode(*planted_maps())
    expected = torch.tensor([[(5 + 0.25) / 10, (2 + 0.75) / 8, 0.3, 0.2]])
    torch.testing.assert_close(box, expected)


def test_decode_batch_reads_each_peak():
    first = planted_maps()
    second = planted_maps(cell=(0, 7), offset=(0.5, 0.5), size=(0.6, 0.4))
    maps = [torch.cat(pair) for pair in zip(first, second)]
    boxes = CenterHead.decode(*maps)
    torch.testing.assert_close(
        boxes[1], torch.tensor([0.5 / 10, 7.5 / 8, 0.6, 0.4]))


def test_forward_shapes_and_ranges():
    head = CenterHead(16, feat_channels=8)
    score, size, offset = head(torch.randn(2, 16, 8, 8))
    assert score.shape == (2, 1, 8, 8)
    assert size.shape == offset.shape == (2, 2, 8, 8)
    for out in (score, size, offset):
        assert out.min() >= 0 and out.max() <= 1


def test_target_heatmap_peaks_at_the_centre_cell():
    head = CenterHead(16)
    boxes = torch.tensor([[0.6, 0.3, 0.4, 0.4]])  # centre in cell (4, 2)
    heatmap = head.target_heatmap(boxes, (8, 8))[0, 0]
    assert heatmap[2, 4] == 1 and heatmap.flatten().argmax() == 2 * 8 + 4
    # min_radius 1: a 3 x 3 Gaussian, not a single cell
    assert (heatmap > 0).sum() == 9
    single = CenterHead(16, min_radius=0).target_heatmap(boxes, (8, 8))
    assert (single > 0).sum() == 1


def test_loss_small_at_the_target_and_larger_elsewhere():
    head = CenterHead(16)
    boxes = torch.tensor([[(4 + 0.5) / 8, (2 + 0.25) / 8, 0.4, 0.3]])
    target = head.target_heatmap(boxes, (8, 8))
    size = torch.zeros(1, 2, 8, 8)
    size[0, :, 2, 4] = torch.tensor([0.4, 0.3])
    offset = torch.zeros(1, 2, 8, 8)
    offset[0, :, 2, 4] = torch.tensor([0.5, 0.25])
    perfect = head.loss((target, size, offset), boxes)
    assert perfect['loss_giou'] < 1e-5 and perfect['loss_l1'] < 1e-6
    assert perfect['loss_heatmap'] < 0.05
    shifted = head.loss((target.roll(3, -1), size.roll(3, -1),
                         offset.roll(3, -1)), boxes)
    for key in perfect:
        assert shifted[key] > perfect[key] + 1e-3, key


def test_loss_weights_are_config():
    boxes = torch.tensor([[0.5, 0.5, 0.4, 0.3]])
    maps = [torch.rand(1, 1, 8, 8), torch.rand(1, 2, 8, 8),
            torch.rand(1, 2, 8, 8)]
    default = CenterHead(16).loss(maps, boxes)
    doubled = CenterHead(
        16, loss_giou=dict(type='GIoULoss', loss_weight=4.0),
        loss_l1=dict(type='L1Loss', loss_weight=10.0)).loss(maps, boxes)
    torch.testing.assert_close(doubled['loss_giou'], 2 * default['loss_giou'])
    torch.testing.assert_close(doubled['loss_l1'], 2 * default['loss_l1'])


def test_gradients_reach_every_branch():
    torch.manual_seed(0)
    head = CenterHead(16, feat_channels=8)
    losses = head.loss(head(torch.randn(2, 16, 8, 8)),
                       torch.tensor([[0.5, 0.5, 0.3, 0.3],
                                     [0.2, 0.7, 0.1, 0.2]]))
    sum(losses.values()).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('steps', [30])
def test_training_lowers_the_loss(steps):
    torch.manual_seed(0)
    head = CenterHead(8, feat_channels=8)
    features = torch.randn(2, 8, 8, 8)
    boxes = torch.tensor([[0.55, 0.3, 0.3, 0.4], [0.2, 0.8, 0.2, 0.2]])
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    history = []
    for _ in range(steps):
        loss = sum(head.loss(head(features), boxes).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(float(loss))
    assert history[-1] < 0.5 * history[0]


def test_scores_start_at_the_prior():
    head = CenterHead(16, feat_channels=8, score_prior=0.1)
    torch.nn.init.zeros_(head.score_branch[-1].weight)
    score, _, _ = head(torch.randn(1, 16, 4, 4))
    torch.testing.assert_close(score, torch.full_like(score, 0.1))
