"""stacked_histogram / spike_frames against hand-counted frames."""
import numpy as np
import pytest

from mmtpspike.datasets.events import Events, spike_frames, stacked_histogram


def events(*rows):
    """Events from ``(t, x, y, p)`` rows."""
    t, x, y, p = zip(*rows)
    return Events.from_arrays(t=t, x=x, y=y, p=p)


def test_window_bins_count_per_pixel_polarity_and_clip():
    # window [100, 200), 4 bins of 25 us
    stream = events((100, 0, 0, 1), (124, 0, 0, 1), (125, 1, 2, 0),
                    (199, 3, 1, 1), (199, 3, 1, 1), (199, 3, 1, 1))
    frames = stacked_histogram(stream, 200, 100, 4, 3, 4, clip=2,
                               time_span='window')
    assert frames.shape == (4, 2, 3, 4) and frames.dtype == np.uint8
    expected = np.zeros((4, 2, 3, 4), np.uint8)
    expected[0, 1, 0, 0] = 2      # two ON events in bin 0
    expected[1, 0, 2, 1] = 1      # OFF at t = 125: bin 1
    expected[3, 1, 1, 3] = 2      # three ON events clipped to 2
    np.testing.assert_array_equal(frames, expected)


def test_events_span_bins_as_rvt():
    # RVT: bins divide [first event, last event]; the last event falls in
    # the last bin
    stream = events((150, 0, 0, 1), (160, 0, 0, 1), (170, 0, 0, 1))
    frames = stacked_histogram(stream, 200, 100, 2, 1, 1)
    np.testing.assert_array_equal(frames[:, 1, 0, 0], [1, 2])
    by_window = stacked_histogram(stream, 200, 100, 2, 1, 1,
                                  time_span='window')
    np.testing.assert_array_equal(by_window[:, 1, 0, 0], [0, 3])


def test_downsample_sum_adds_blocks_before_clipping():
    stream = events((0, 0, 0, 1), (1, 1, 0, 1), (2, 0, 1, 1), (3, 1, 1, 1),
                    (4, 2, 0, 0), (5, 4, 0, 0))  # x = 4: dropped (W 5 // 2)
    frames = stacked_histogram(stream, 10, 10, 1, 2, 5, clip=3, downsample=2,
                               downsample_mode='sum')
    assert frames.shape == (1, 2, 1, 2)
    np.testing.assert_array_equal(frames[0, :, 0], [[0, 1], [3, 0]])


@pytest.mark.parametrize('mode', ['sum', 'nearest'])
def test_downsample_drops_the_rows_and_columns_past_whole_blocks(mode):
    # 3 x 5 by 2 -> 1 x 2: row 2 and column 4 are in no whole block
    stream = events((0, 4, 0, 0), (1, 1, 2, 0), (2, 4, 2, 0))
    frames = stacked_histogram(stream, 10, 10, 1, 3, 5, downsample=2,
                               downsample_mode=mode)
    assert frames.shape == (1, 2, 1, 2) and not frames.any()


def test_bins_follow_floor_of_time_times_bins_over_window():
    # window [0, 10), 3 bins: floor(3 t / 10) = 0, 1, 1, 2, 2 for
    # t = 3, 4, 6, 7, 9 (edges at 3.33 and 6.67)
    stream = events(*[(t, 0, 0, 1) for t in (3, 4, 6, 7, 9)])
    frames = stacked_histogram(stream, 10, 10, 3, 1, 1, time_span='window')
    np.testing.assert_array_equal(frames[:, 1, 0, 0], [1, 2, 2])


def test_histogram_equals_counting_event_by_event():
    rng = np.random.default_rng(0)
    num, t_end, window, num_bins, height, width = 4000, 5000, 997, 7, 5, 6
    stream = Events.from_arrays(
        t=np.sort(rng.integers(t_end - window, t_end, num)),
        x=rng.integers(0, width, num), y=rng.integers(0, height, num),
        p=rng.integers(0, 2, num))
    counts = np.zeros((num_bins, 2, height, width), np.int64)
    bins = (stream.t - (t_end - window)) * num_bins // window
    np.add.at(counts, (bins, stream.p, stream.y, stream.x), 1)
    frames = stacked_histogram(stream, t_end, window, num_bins, height,
                               width, clip=3, time_span='window')
    np.testing.assert_array_equal(frames, np.minimum(counts, 3))
    np.testing.assert_array_equal(
        spike_frames(stream, t_end, window, num_bins, height, width),
        counts > 0)


def test_downsample_nearest_keeps_the_centre_pixel_of_each_block():
    # nearest-exact with factor 2 reads pixel (2 i + 1, 2 j + 1)
    stream = events((0, 0, 0, 1), (1, 1, 1, 1), (2, 3, 1, 0), (3, 2, 1, 0))
    frames = stacked_histogram(stream, 10, 10, 1, 2, 4, downsample=2)
    np.testing.assert_array_equal(frames[0, :, 0], [[0, 1], [1, 0]])


def test_spike_frames_are_binary():
    stream = events((0, 1, 1, 1), (1, 1, 1, 1), (2, 0, 0, 0))
    frames = spike_frames(stream, 10, 10, 2, 2, 2)
    assert frames.max() == 1
    assert frames[0, 1, 1, 1] == 1 and frames[0, 0, 0, 0] == 1
    assert frames.sum() == 2


def test_empty_window_gives_zero_frames():
    frames = stacked_histogram(Events.empty(), 10, 10, 3, 4, 5)
    assert frames.shape == (3, 2, 4, 5) and not frames.any()


@pytest.mark.parametrize('stream, match', [
    (events((5, 0, 0, 1)), 'outside the window'),
    (events((20, 0, 0, 1)), 'outside the window'),
    (events((15, 9, 0, 1)), 'outside the 4 x 3 sensor'),
])
def test_events_outside_window_or_sensor_are_errors(stream, match):
    with pytest.raises(ValueError, match=match):
        stacked_histogram(stream, 20, 10, 2, 3, 4)


@pytest.mark.parametrize('option, match', [
    (dict(num_bins=0), 'num_bins'), (dict(window_us=0), 'window_us'),
    (dict(downsample=1.5), 'downsample'), (dict(clip=0), 'clip'),
    (dict(time_span='bins'), 'time_span'),
    (dict(downsample_mode='area'), 'downsample_mode')])
def test_bad_arguments_are_named(option, match):
    args = dict(t_end_us=10, window_us=10, num_bins=2, height=2, width=2)
    args.update(option)
    with pytest.raises(ValueError, match=match):
        stacked_histogram(Events.empty(), **args)
