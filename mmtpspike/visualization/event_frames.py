"""Event frames as pictures: the background of token maps and detections on
event input."""
from typing import Union

import numpy as np
import torch

ON_REMOVED = np.array([255, 255, 0], np.float32)   # white -> red (BGR)
OFF_REMOVED = np.array([0, 255, 255], np.float32)  # white -> blue (BGR)


def event_frame_image(frames: Union[np.ndarray, torch.Tensor],
                      event_channels: int = 2,
                      saturation: float = 4.) -> np.ndarray:
    """Draw event frames as one picture: the time bins summed, ON events
    red and OFF events blue on white, a pixel fully coloured from
    ``saturation`` events on.

    Args:
        frames (np.ndarray | torch.Tensor): ``[T * C, H, W]`` (channel
            ``t * C + polarity``, as the event transforms give ``img`` and
            the dataloader batches it) or ``[T, C, H, W]``; ``C = 2``.
        event_channels (int): ``C``. Default: 2.
        saturation (float): Events per pixel drawn at full colour.
            Default: 4.

    Returns:
        np.ndarray: BGR uint8 ``[H, W, 3]``.

    Example:
        >>> frames = np.zeros((4, 2, 3), np.float32)
        >>> frames[1, 0, 0] = frames[3, 0, 0] = 2  # ON at (0, 0), t = 0, 1
        >>> frames[2, 1, 2] = 8                    # OFF at (1, 2), t = 1
        >>> image = event_frame_image(frames)
        >>> image[0, 0].tolist(), image[1, 2].tolist(), image[0, 1].tolist()
        ([0, 0, 255], [255, 0, 0], [255, 255, 255])
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames, np.float32)
    if frames.ndim == 3:
        frames = frames.reshape(-1, event_channels, *frames.shape[1:])
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ValueError(f'event frames must be [T * 2, H, W] or '
                         f'[T, 2, H, W], got shape {frames.shape}')
    counts = frames.sum(0) / saturation
    off, on = np.minimum(counts, 1.)[..., None]
    image = 255. - on * ON_REMOVED - off * OFF_REMOVED
    return image.clip(0, 255).astype(np.uint8)
