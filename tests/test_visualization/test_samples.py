"""Pictures and names of model samples: images as they are, event frames
drawn."""
import numpy as np
import torch

from mmtpspike.visualization import (event_frame_image, sample_name,
                                     sample_picture)

EVENT_META = dict(img_path='data/r_td.dat', recording='r', timestamp_us=500,
                  event_repr_shape=(2, 2))


def test_event_samples_are_drawn_and_named_by_time():
    frames = torch.zeros(4, 3, 5)
    frames[1, 0, 0] = 4  # ON at (0, 0), first bin
    frames[2, 2, 4] = 4  # OFF at (2, 4), second bin
    picture = sample_picture(frames, EVENT_META)
    np.testing.assert_array_equal(picture, event_frame_image(frames))
    assert picture.shape == (3, 5, 3)
    assert picture[0, 0].tolist() == [0, 0, 255]    # red
    assert picture[2, 4].tolist() == [255, 0, 0]    # blue
    assert picture[1, 1].tolist() == [255, 255, 255]
    assert sample_name(EVENT_META) == 'r_500us'


def test_image_samples_are_their_own_picture():
    image = torch.randint(0, 255, (3, 4, 6), dtype=torch.uint8)
    meta = dict(img_path='data/val/000012.jpg')
    picture = sample_picture(image, meta)
    np.testing.assert_array_equal(picture, image.permute(1, 2, 0).numpy())
    assert sample_name(meta) == '000012'
