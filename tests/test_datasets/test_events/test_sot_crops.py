"""Crop geometry of single-object tracking: windows, area resampling and the
box maps between frame and crop pixels."""
import doctest
import math

import pytest
import torch

from mmtpspike.datasets.events import sot_crops, sot_representation
from mmtpspike.datasets.events.sot_crops import (box_from_crop, box_to_crop,
                                                 crop_frames, crop_window,
                                                 sample_jitter)


def test_window_is_centred_with_side_context_times_mean_side():
    boxes = torch.tensor([[10., 20., 4., 9.], [0., 0., 8., 2.]])
    windows = crop_window(boxes, 4.)
    # sides 4 * 6 and 4 * 4, centres (12, 24.5) and (4, 1)
    torch.testing.assert_close(
        windows, torch.tensor([[0., 12.5, 24.], [-4., -7., 16.]],
                              dtype=torch.float64))
    assert crop_window(boxes[0], 2.).shape == (1, 3)


def test_jitter_moves_and_scales_the_window():
    box = torch.tensor([10., 10., 4., 4.])
    window = crop_window(box, 2., jitter=torch.tensor([1., -2., 4., 1.]))
    # box moved to centre (13, 10), size 16 x 4: side 2 * 8
    torch.testing.assert_close(
        window, torch.tensor([[5., 2., 16.]], dtype=torch.float64))


def test_zero_size_box_has_no_window():
    with pytest.raises(ValueError, match='absent target'):
        crop_window(torch.tensor([1., 1., 0., 5.]), 2.)


def test_sampled_jitter_stays_in_its_bounds_and_is_seeded():
    boxes = torch.tensor([[0., 0., 10., 40.]]).repeat(2000, 1)
    jitter = sample_jitter(boxes, 3., 0.25,
                           torch.Generator().manual_seed(0))
    mean_side = (400 * jitter[:, 2] * jitter[:, 3]).sqrt()
    assert (jitter[:, :2].abs() <= 1.5 * mean_side[:, None]).all()
    assert (jitter[:, :2].abs() > 1.2 * mean_side[:, None]).any()
    assert abs(jitter[:, 2].log().std().item() - 0.25) < 0.02
    again = sample_jitter(boxes, 3., 0.25, torch.Generator().manual_seed(0))
    torch.testing.assert_close(jitter, again)
    # the box centre stays inside the search window (context 4 > 3)
    windows = crop_window(boxes, 4., jitter)
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    assert ((centre >= windows[:, :2]) &
            (centre < windows[:, :2] + windows[:, 2:])).all()


@pytest.mark.parametrize('window, out_size', [
    ((3., 5., 16.), 8),  # downsampled by 2, aligned
    ((2.5, 4.25, 10.), 32),  # upsampled, fractional origin
    ((-7.3, 1.6, 23.7), 16),  # partly outside the frame
])
def test_impulse_lands_where_box_to_crop_says(window, out_size):
    frames = torch.zeros(1, 2, 20, 24)
    frames[0, 1, 9, 11] = 1.  # pixel [11, 12) x [9, 10)
    crop = crop_frames(frames, torch.tensor([window]), out_size)
    assert crop.shape == (1, 2, out_size, out_size)
    assert crop[0, 0].abs().sum() == 0
    scale = window[2] / out_size
    # the mass is kept up to the area of a crop pixel
    assert math.isclose(crop.sum().item() * scale**2, 1., rel_tol=1e-5)
    # each crop pixel holds the area it shares with the impulse's pixel
    # mapped into the crop
    x, y, w, h = box_to_crop(torch.tensor([11., 9., 1., 1.]),
                             torch.tensor(window), out_size)[0]
    edges = torch.arange(out_size, dtype=torch.float64)
    cols = (torch.minimum(edges + 1, x + w) -
            torch.maximum(edges, x)).clamp(min=0)
    rows = (torch.minimum(edges + 1, y + h) -
            torch.maximum(edges, y)).clamp(min=0)
    torch.testing.assert_close(crop[0, 1].double(), rows[:, None] * cols,
                               atol=1e-6, rtol=1e-5)


def test_area_mean_keeps_count_scale_and_pads_with_zeros():
    frames = torch.full((2, 1, 10, 10), 3.)
    windows = torch.tensor([[0., 0., 10.], [-5., 0., 10.]])
    crop = crop_frames(frames, windows, 5)
    torch.testing.assert_close(crop[0], torch.full((1, 5, 5), 3.))
    # the second window's left half lies outside the frame: zeros there,
    # and its middle column is half outside
    assert (crop[1, 0, :, :2] == 0).all() and (crop[1, 0, :, 3:] == 3).all()
    torch.testing.assert_close(crop[1, 0, :, 2], torch.full((5, ), 1.5))
    # a window wholly outside gives zeros
    assert crop_frames(frames[:1], torch.tensor([[30., 30., 4.]]),
                       4).abs().sum() == 0


def test_crops_are_vectorised_per_frame():
    gen = torch.Generator().manual_seed(1)
    frames = torch.rand(3, 4, 12, 14, generator=gen)
    windows = torch.tensor([[0., 0., 6.], [3.5, 2., 9.], [-2., 5., 7.]])
    batch = crop_frames(frames, windows, 7)
    for index in range(3):
        one = crop_frames(frames[index:index + 1], windows[index:index + 1],
                          7)
        torch.testing.assert_close(batch[index:index + 1], one)
    with pytest.raises(ValueError, match='one window per frame'):
        crop_frames(frames, windows[:2], 7)


def test_box_maps_are_exact_inverses():
    gen = torch.Generator().manual_seed(0)
    boxes = torch.rand(50, 4, generator=gen, dtype=torch.float64) * 100 + 1
    windows = crop_window(boxes, 4.) + torch.tensor([3., -2., 0.],
                                                    dtype=torch.float64)
    in_crop = box_to_crop(boxes, windows, 256)
    torch.testing.assert_close(box_from_crop(in_crop, windows, 256), boxes)
    # a box at its own context-4 window fills the middle quarter
    square = torch.tensor([10., 10., 8., 8.])
    torch.testing.assert_close(
        box_to_crop(square, crop_window(square, 4.), 128),
        torch.tensor([[48., 48., 32., 32.]], dtype=torch.float64))


@pytest.mark.parametrize('module', [sot_crops, sot_representation],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
