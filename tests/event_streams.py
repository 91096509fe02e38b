"""Event streams for the tests of the event readers and writers."""
import numpy as np

from mmtpspike.datasets.events import Events


def random_events(num, seed=0, t_max=10_000, width=304, height=240):
    """Sorted events with many equal timestamps, coordinates over the whole
    ``width`` x ``height`` sensor (its extremes included) and both
    polarities."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, width, num)
    y = rng.integers(0, height, num)
    x[:2], y[:2] = width - 1, [0, height - 1]
    return Events.from_arrays(
        t=np.sort(rng.integers(0, t_max, num)), x=x, y=y,
        p=rng.integers(0, 2, num))


def assert_events_equal(actual, expected):
    """Every column equal, dtype included."""
    for name in 'txyp':
        np.testing.assert_array_equal(
            getattr(actual, name), getattr(expected, name), err_msg=name)
        assert getattr(actual, name).dtype == getattr(expected, name).dtype
