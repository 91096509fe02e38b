"""Event-camera data: readers and writers of the Prophesee, RVT and AEDAT4
file formats, the FE108 / VisEvent / FELT tracking sequences, event
representations as registered transforms, the Gen1 / 1Mpx datasets and a
small event simulator."""
from mmtpspike.registry import INSTALLED_TASK_PACKAGES
from .aedat4 import Aedat4Recording, write_aedat4
from .bbox_labels import (BBOX_DTYPE, LEGACY_BBOX_DTYPE, label_path_for,
                          load_bbox_npy, require_label_path, write_bbox_npy)
from .events import EVENT_DTYPES, Events
from .prophesee_dat import DatRecording, decode_records, write_dat
from .protocol import CAMERAS, CameraSpec, EvaluationFilter, sanitize_labels
from .representations import spike_frames, stacked_histogram
from .recordings import Recording, open_recording
from .rvt_h5 import H5Recording, write_h5
from .simulator import EventSimulator
from .sot_crops import box_from_crop, box_to_crop, crop_frames, crop_window
from .sot_dataset import EventSOTDataset
from .sot_representation import EventDecayFrames, decayed_frames
from .sot_sequences import (LAYOUTS, EventSequence, find_sequences,
                            load_sequence)
from .sot_transforms import LoadSOTEventFrames, PackSOTInputs, SOTPairCrops
from .transforms import (EventHistogram, EventSpikeFrames, LoadEventFrames,
                         LoadEventWindow)

__all__ = [
    'Aedat4Recording', 'BBOX_DTYPE', 'CAMERAS', 'CameraSpec', 'DatRecording',
    'EVENT_DTYPES',
    'EvaluationFilter', 'EventHistogram', 'EventSimulator',
    'EventSpikeFrames', 'Events', 'H5Recording', 'LEGACY_BBOX_DTYPE',
    'LoadEventFrames', 'LoadEventWindow', 'Recording', 'decode_records',
    'label_path_for', 'load_bbox_npy', 'open_recording',
    'require_label_path', 'sanitize_labels', 'spike_frames',
    'stacked_histogram', 'write_bbox_npy', 'write_dat', 'write_h5',
    'write_aedat4', 'EventSequence', 'LAYOUTS', 'find_sequences',
    'load_sequence', 'EventDecayFrames', 'EventSOTDataset',
    'LoadSOTEventFrames', 'PackSOTInputs', 'SOTPairCrops', 'box_from_crop',
    'box_to_crop', 'crop_frames', 'crop_window', 'decayed_frames'
]

if 'mmdet' in INSTALLED_TASK_PACKAGES:
    from .prophesee_dataset import Gen1Dataset, OneMpxDataset  # noqa: F401
    __all__ += ['Gen1Dataset', 'OneMpxDataset']
