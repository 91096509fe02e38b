"""A picture and a file name for each sample a model is fed: images as
they are, event frames drawn (:func:`event_frame_image`)."""
import os.path as osp

import numpy as np
import torch

from .event_frames import event_frame_image


def is_event_sample(metainfo: dict) -> bool:
    """Whether a sample's input is event frames (the event transforms set
    ``event_repr_shape``)."""
    return 'event_repr_shape' in metainfo


def sample_picture(inputs: torch.Tensor, metainfo: dict) -> np.ndarray:
    """BGR uint8 ``[H, W, 3]`` picture of one sample's input as the
    dataloader gives it (``[3, H, W]`` BGR image or ``[T * 2, H, W]`` event
    frames, before the data preprocessor)."""
    if is_event_sample(metainfo):
        return event_frame_image(inputs)
    return np.ascontiguousarray(inputs.permute(1, 2, 0).cpu().numpy())


def sample_name(metainfo: dict) -> str:
    """File stem for one sample: the image's name, or
    ``<recording>_<t>us`` for an event sample (one recording holds many)."""
    if is_event_sample(metainfo):
        return f"{metainfo['recording']}_{metainfo['timestamp_us']}us"
    return osp.splitext(osp.basename(metainfo['img_path']))[0]
