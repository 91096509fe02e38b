"""EventSimulator on hand-made frames whose events can be worked out."""
import numpy as np
import pytest

from mmtpspike.datasets.events.events import EVENT_DTYPES
from mmtpspike.datasets.events.simulator import EventSimulator

C = 0.2  # contrast threshold of the tests


def log_frame(levels):
    """Frame whose log intensity (eps = 0) is ``levels`` thresholds."""
    return np.exp(C * np.asarray(levels, dtype=np.float64))


def as_tuples(events):
    return list(zip(events.t.tolist(), events.x.tolist(), events.y.tolist(),
                    events.p.tolist()))


def test_crossings_make_events_at_interpolated_times():
    sim = EventSimulator(contrast_threshold=C, eps=0.)
    assert len(sim.step(log_frame(np.zeros((2, 3))), 0)) == 0
    # (y=1, x=2) brightens by 2.5 thresholds, (y=0, x=0) darkens by 1.5,
    # the other pixels stay
    levels = np.zeros((2, 3))
    levels[1, 2], levels[0, 0] = 2.5, -1.5
    events = sim.step(log_frame(levels), 1000)
    # crossings at 1 / 2.5, 1 / 1.5 and 2 / 2.5 of the interval
    assert as_tuples(events) == [(400, 2, 1, 1), (667, 0, 0, 0),
                                 (800, 2, 1, 1)]
    assert {name: getattr(events, name).dtype
            for name in EVENT_DTYPES} == EVENT_DTYPES


def test_reference_moves_by_whole_thresholds():
    sim = EventSimulator(contrast_threshold=C, eps=0.)
    levels = np.zeros((1, 2))
    sim.step(log_frame(levels), 0)
    levels[0] = 2.5, -1.5
    sim.step(log_frame(levels), 1000)
    np.testing.assert_allclose(sim.reference, [[2 * C, -C]])
    # up 1 more threshold from 2.5: the level 3 (reference 2 + 1) is
    # crossed half way; the dark pixel stays 0.5 above its next level
    levels[0] = 3.5, -1.5
    assert as_tuples(sim.step(log_frame(levels), 2000)) == [(1500, 0, 0, 1)]
    # down 2 thresholds to 1.5: the level 2 (reference 3 - 1) is crossed
    # after 1.5 of them
    levels[0] = 1.5, -1.5
    assert as_tuples(sim.step(log_frame(levels), 3000)) == [(2750, 0, 0, 0)]


def test_events_are_sorted_and_simulate_equals_streaming():
    rng = np.random.default_rng(0)
    frames = [rng.uniform(0.1, 1., size=(6, 7)) for _ in range(4)]
    times = [0, 1000, 1500, 4000]
    events = EventSimulator(contrast_threshold=C).simulate(frames, times)
    assert len(events) > 20
    assert (np.diff(events.t) >= 0).all()
    assert events.t.min() > 0 and events.t.max() <= 4000
    sim = EventSimulator(contrast_threshold=C)
    streamed = [sim.step(frame, t) for frame, t in zip(frames, times)]
    assert as_tuples(events) == sum((as_tuples(e) for e in streamed), [])


def test_separate_off_threshold():
    sim = EventSimulator(contrast_threshold=C, off_threshold=C / 2, eps=0.)
    sim.step(log_frame([[0., 0.]]), 0)
    # -1.75 ON thresholds are -3.5 OFF thresholds; +1.5 is one ON event
    events = sim.step(log_frame([[-1.75, 1.5]]), 700)
    assert as_tuples(events) == [(200, 0, 0, 0), (400, 0, 0, 0),
                                 (467, 1, 0, 1), (600, 0, 0, 0)]


def test_refractory_period_drops_events_but_moves_the_reference():
    sim = EventSimulator(contrast_threshold=C, refractory_us=400, eps=0.)
    sim.step(log_frame([[0.]]), 0)
    # crossings at 250, 500, 750, 1000: 500 and 1000 fall in the
    # refractory period of the events before them
    assert sim.step(log_frame([[4.2]]), 1050).t.tolist() == [250, 750]
    np.testing.assert_allclose(sim.reference, [[4 * C]])
    # the crossing of level 5 at 1031 is 281 us after the last event
    assert sim.step(log_frame([[5.5]]), 1100).t.tolist() == []
    assert sim.step(log_frame([[6.5]]), 1500).t.tolist() == [1300]


def test_threshold_jitter_is_per_pixel_and_seeded():
    frames = [np.full((20, 20), 0.1), np.full((20, 20), 0.5)]
    counts = []
    for seed in (0, 0, 1):
        sim = EventSimulator(contrast_threshold=C, threshold_sigma=0.2,
                             seed=seed)
        events = sim.simulate(frames, [0, 1000])
        counts.append(np.bincount(events.y * 20 + events.x, minlength=400))
    assert len(np.unique(counts[0])) > 1  # same change, different counts
    np.testing.assert_array_equal(counts[0], counts[1])
    assert not np.array_equal(counts[0], counts[2])
    # no jitter: log(0.501 / 0.101) / 0.2 = 8.0 thresholds everywhere
    events = EventSimulator(contrast_threshold=C).simulate(frames, [0, 1000])
    assert len(events) == 8 * 400


def test_noise_events_are_seeded_and_leave_the_reference():
    frames = [np.full((10, 10), 0.5)] * 3

    def noise(seed):
        sim = EventSimulator(noise_rate_hz=1000., seed=seed)
        events = sim.simulate(frames, [0, 1000, 2000])
        np.testing.assert_allclose(sim.reference, np.log(0.501))
        return events

    events = noise(0)
    # 1000 Hz on 100 pixels for 2 ms: 200 expected
    assert 150 < len(events) < 250
    assert events.t.min() >= 1 and events.t.max() <= 2000
    assert (np.diff(events.t) >= 0).all()
    assert set(events.p.tolist()) == {0, 1}
    assert as_tuples(noise(0)) == as_tuples(events)
    assert as_tuples(noise(1)) != as_tuples(events)


def test_reset_starts_a_new_stream():
    sim = EventSimulator(contrast_threshold=C, eps=0.)
    sim.step(log_frame([[0.]]), 0)
    sim.reset()
    # after a reset the next frame only sets the reference again
    assert len(sim.step(log_frame([[3.]]), 5)) == 0
    assert len(sim.step(log_frame([[4.5]]), 10)) == 1


@pytest.mark.parametrize('frame, t_us, message', [
    (np.ones((3, 2)), 10, 'same size'),
    (np.ones((2, 3)), 0, 'timestamps must increase'),
    (-np.ones((2, 3)), 10, '>= 0'),
    (np.ones((2, 3, 3)), 10, r'\[H, W\]'),
])
def test_bad_frames_are_refused(frame, t_us, message):
    sim = EventSimulator()
    sim.step(np.ones((2, 3)), 0)
    with pytest.raises(ValueError, match=message):
        sim.step(frame, t_us)


@pytest.mark.parametrize('kwargs', [
    dict(contrast_threshold=0.), dict(off_threshold=-0.1),
    dict(refractory_us=-1), dict(noise_rate_hz=-1.), dict(eps=-1e-3)])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match='EventSimulator'):
        EventSimulator(**kwargs)
