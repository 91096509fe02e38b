import builtins

import numpy as np
import pytest

from mmtpspike.datasets.events import rvt_h5
from mmtpspike.datasets.events.events import Events
from mmtpspike.datasets.events.prophesee_dat import DatRecording, write_dat
from mmtpspike.datasets.events.recordings import open_recording
from mmtpspike.utils.config import SetupError

EVENTS = Events.from_arrays(t=[1, 5, 5, 9], x=[0, 303, 7, 8],
                            y=[239, 0, 1, 2], p=[1, 0, 1, 0])


def test_open_dat(tmp_path):
    write_dat(tmp_path / 'a_td.dat', EVENTS, 304, 240)
    recording = open_recording(tmp_path / 'a_td.dat')
    assert isinstance(recording, DatRecording)
    assert recording.read(5, 6).x.tolist() == [303, 7]


@pytest.mark.parametrize('name', ['a_td.h5', 'a_td.dat.h5', 'a.HDF5'])
def test_open_h5(tmp_path, name):
    pytest.importorskip('h5py')
    rvt_h5.write_h5(tmp_path / name, EVENTS, 304, 240)
    recording = open_recording(tmp_path / name, repair_time=True)
    assert isinstance(recording, rvt_h5.H5Recording)
    assert recording.repair_time
    np.testing.assert_array_equal(recording.read_all().y, EVENTS.y)


def test_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match=r"a.raw: no event reader for "
                       r"\".raw\" files; supported suffixes: \['.aedat4', "
                       r"'.dat', '.h5', '.hdf5'\]"):
        open_recording(tmp_path / 'a.raw')


def test_missing_h5_extra_names_it(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def import_without_hdf5plugin(name, *args, **kwargs):
        if name == 'hdf5plugin':
            raise ImportError('No module named hdf5plugin')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', import_without_hdf5plugin)
    with pytest.raises(SetupError,
                       match=r'pip install "mmtpspike\[events-h5\]"'):
        open_recording(tmp_path / 'a_td.h5')
