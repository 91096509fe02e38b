import numpy as np
import pytest

from mmtpspike.visualization import draw_track_strip
from mmtpspike.visualization.token_maps import TITLE_HEIGHT
from mmtpspike.visualization.track_strip import GT_COLOUR, PRED_COLOUR


def frames(num):
    return [np.zeros((2, 2, 40, 60), np.float32) for _ in range(num)]


def colour_pixels(image, colour):
    return np.argwhere((image == np.array(colour, np.uint8)).all(-1))


def test_rows_and_boxes_land_where_they_belong():
    gt = np.array([[10., 5, 20, 10], [30, 20, 10, 10]])
    dense = gt + [1, 0, 0, 0]
    lost = np.array([[10., 5, 20, 10], [np.nan] * 4])
    image = draw_track_strip(frames(2), [0, 7], gt,
                             dict(dense=dense, lost=lost), max_side=60)
    tile_h = TITLE_HEIGHT + 40
    assert image.shape == (2 * tile_h, 120, 3)
    green = colour_pixels(image, GT_COLOUR)
    # the second frame's GT box, x 30..40, y 20..30, in the first row
    second = green[(green[:, 0] < tile_h) & (green[:, 1] >= 60)]
    assert second[:, 1].min() - 60 == 30 and second[:, 1].max() - 60 == 40
    assert second[:, 0].min() - TITLE_HEIGHT == 20
    red = colour_pixels(image, PRED_COLOUR)
    # the lost tracker draws nothing in its second tile
    in_lost_second = red[(red[:, 0] >= tile_h) & (red[:, 1] >= 60)]
    assert len(in_lost_second) == 0
    # the dense tracker's box starts one pixel right of the GT
    first_dense = red[(red[:, 0] < tile_h) & (red[:, 1] < 60)]
    assert first_dense[:, 1].min() == 11


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError, match='2 boxes for 3 frames'):
        draw_track_strip(frames(3), [0, 1, 2], np.zeros((3, 4)),
                         dict(dense=np.zeros((2, 4))))


def test_stopped_search_tokens_are_tinted_in_their_cells():
    kept = np.ones((2, 2), bool)
    kept[1, 0] = False  # bottom-left cell of the window (10, 0, 20)
    image = draw_track_strip(
        frames(1), [3], np.full((1, 4), np.nan),
        dict(pruned=np.full((1, 4), np.nan)), max_side=60,
        search_tokens=dict(pruned=[((10., 0., 20.), kept)]))
    tile = image[TITLE_HEIGHT:]
    white = np.array([255, 255, 255])
    assert (tile[10:20, 10:20] != white).any(-1).all()   # stopped: tinted
    assert (tile[0:10, 10:30] == white).all()            # kept: untouched
    assert (tile[10:20, 20:30] == white).all()
    assert (tile[:, 30:] == white).all()                 # outside
