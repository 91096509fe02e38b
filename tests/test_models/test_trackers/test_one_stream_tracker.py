"""SpikingOneStreamTracker: training losses, sequential prediction."""
import pytest
import torch

from mmtpspike.datasets.events.sot_crops import crop_window
from mmtpspike.models.trackers.one_stream_tracker import (
    boxes_to_unit_cxcywh, clip_box, hann_window, unit_cxcywh_to_xywh)
from mmtpspike.structures.track_data_sample import TrackDataSample
from tiny_tracking import TIMESTEPS, event_crops, tiny_tracker

FRAME_HEIGHT, FRAME_WIDTH = 60, 90


def pair_batch():
    template, search = event_crops()
    samples = [TrackDataSample(gt_box=torch.tensor([20., 24., 16., 12.])),
               TrackDataSample(gt_box=torch.tensor([30., 10., 8., 20.]))]
    return dict(template=template, search=search), samples


def sequence(name, num_frames=3, seed=0):
    """A target blob of events moving right by 4 px a frame, with noise:
    ``(frames [1, T, 2, H, W], data sample)`` per frame."""
    generator = torch.Generator().manual_seed(seed)
    for index in range(num_frames):
        frame = torch.poisson(torch.full(
            (1, TIMESTEPS, 2, FRAME_HEIGHT, FRAME_WIDTH), 0.2),
            generator=generator)
        x = 30 + 4 * index
        frame[..., 20:32, x:x + 14] += 3.
        sample = TrackDataSample(
            gt_box=torch.tensor([float(x), 20., 14., 12.]),
            metainfo=dict(sequence=name, frame_index=index,
                          num_frames=num_frames,
                          ori_shape=(FRAME_HEIGHT, FRAME_WIDTH)))
        yield frame, sample


def track(tracker, frames):
    return [tracker(dict(frame=frame), [sample], 'predict')[0]
            for frame, sample in frames]


@pytest.mark.parametrize('pruning', [
    {}, dict(keep_ratios=0.5, scorer=dict(type='CandidateEliminationScorer'))
])
def test_loss_mode_gradients(pruning):
    tracker = tiny_tracker(**pruning).train()
    losses = tracker(*pair_batch(), 'loss')
    assert set(losses) == {'loss_heatmap', 'loss_giou', 'loss_l1'}
    assert all(torch.isfinite(loss) for loss in losses.values())
    sum(losses.values()).backward()
    for name, param in tracker.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    # through the spiking encoder down to the event encoding conv
    first = tracker.encoder.patch_embed[0].encode_conv.weight.grad
    assert first.abs().sum() > 0


def test_loss_targets_are_normalised_search_boxes(monkeypatch):
    tracker = tiny_tracker()
    seen = []
    monkeypatch.setattr(tracker.head, 'loss',
                        lambda outputs, boxes: seen.append(boxes) or {})
    tracker(*pair_batch(), 'loss')
    expected = torch.tensor([[28., 30., 16., 12.], [34., 20., 8., 20.]])
    torch.testing.assert_close(seen[0], expected / 64)


def test_tensor_mode_shapes():
    tracker = tiny_tracker()
    inputs, _ = pair_batch()
    score, size, offset = tracker(inputs, None, 'tensor')
    assert score.shape == (2, 1, 8, 8)
    assert size.shape == offset.shape == (2, 2, 8, 8)


@pytest.mark.parametrize('pruning', [
    {}, dict(keep_ratios=0.3, scorer=dict(type='CandidateEliminationScorer'))
])
def test_predict_sequence_inside_the_frame(pruning):
    tracker = tiny_tracker(**pruning)
    frames = list(sequence('a'))
    results = track(tracker, frames)
    assert torch.equal(results[0].pred_box, frames[0][1].gt_box)
    assert results[0].pred_score == 1.0
    for result in results[1:]:
        x, y, w, h = result.pred_box.tolist()
        assert result.pred_box.dtype == torch.float32
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1
        assert x + w <= FRAME_WIDTH + 1e-4 and y + h <= FRAME_HEIGHT + 1e-4
        assert 0 <= result.pred_score <= 1


def test_state_resets_on_a_new_sequence():
    tracker = tiny_tracker()
    track(tracker, sequence('a'))
    after_a = track(tracker, sequence('b', num_frames=2, seed=5))
    fresh = track(tiny_tracker(), sequence('b', num_frames=2, seed=5))
    assert tracker.state.sequence == 'b'
    assert torch.equal(after_a[1].pred_box, fresh[1].pred_box)
    # frame 0 always starts over, also within the same sequence name
    again = track(tracker, sequence('b', num_frames=2, seed=5))
    assert torch.equal(again[1].pred_box, fresh[1].pred_box)


def test_predict_rejects_batches_and_disorder():
    tracker = tiny_tracker()
    frames = list(sequence('a', num_frames=3))
    frame, sample = frames[0]
    with pytest.raises(ValueError, match='batch'):
        tracker(dict(frame=frame.repeat(2, 1, 1, 1, 1)),
                [sample, sample], 'predict')
    with pytest.raises(RuntimeError, match='frame 0'):
        track(tracker, frames[1:2])
    track(tracker, frames[:1])
    with pytest.raises(RuntimeError, match='follows frame 0'):
        track(tracker, frames[2:3])
    with pytest.raises(RuntimeError, match='frame 0'):
        track(tracker, list(sequence('other'))[1:2])


def test_predict_maps_a_planted_peak_back_to_the_frame(monkeypatch):
    tracker = tiny_tracker()
    frames = list(sequence('a', num_frames=2))
    previous = frames[0][1].gt_box
    side = float(crop_window(previous, tracker.search_context)[0, 2])
    target = torch.tensor([37., 22., 10., 8.])  # what the head will say
    crop_centre = (target[:2] + target[2:] / 2 - previous[:2] -
                   previous[2:] / 2) * 64 / side + 32  # crop pixels
    cell = (crop_centre // 8).long()
    score = torch.full((1, 1, 8, 8), 0.1)
    score[0, 0, cell[1], cell[0]] = 0.9
    size = torch.zeros(1, 2, 8, 8)
    size[0, :, cell[1], cell[0]] = target[2:] / side
    offset = torch.zeros(1, 2, 8, 8)
    offset[0, :, cell[1], cell[0]] = crop_centre / 8 - cell
    monkeypatch.setattr(tracker, 'head_outputs',
                        lambda *args: (score, size, offset))
    results = track(tracker, frames)
    torch.testing.assert_close(results[1].pred_box, target)
    assert results[1].pred_score == pytest.approx(0.9)


def test_box_helpers():
    boxes = torch.tensor([[10., 20., 8., 4.]])
    unit = boxes_to_unit_cxcywh(boxes, 64)
    torch.testing.assert_close(unit, torch.tensor([[14., 22., 8., 4.]]) / 64)
    torch.testing.assert_close(unit_cxcywh_to_xywh(unit, 64), boxes)
    clipped = clip_box(torch.tensor([-5., 50., 20., 30.]), 90, 60, 1.)
    assert clipped.tolist() == [0., 50., 15., 10.]
    outside = clip_box(torch.tensor([100., 70., 5., 5.]), 90, 60, 1.)
    assert outside.tolist() == [89., 59., 1., 1.]


def test_hann_window_favours_the_centre():
    window = hann_window(8, 8)
    assert window.min() > 0
    torch.testing.assert_close(window[3:5, 3:5].min(), window.max())
    assert window[3:5, 3:5].min() > window[2, 3]
    tracker = tiny_tracker()
    scores = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(tracker.window_scores(scores),
                               scores * window)
    tracker.test_cfg['use_hann'] = False
    assert torch.equal(tracker.window_scores(scores), scores)


def test_test_cfg_keys_are_checked():
    from mmengine.registry import MODELS
    with pytest.raises(KeyError, match='hann'):
        MODELS.build(dict(type='SpikingOneStreamTracker',
                          encoder=dict(type='JointTokenEncoder'),
                          head=dict(type='CenterHead', in_channels=128),
                          test_cfg=dict(hann=True)))
