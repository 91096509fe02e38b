"""CheckedLoadImageFromFile: unreadable images named, or skipped with a
count."""
import logging

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import TRANSFORMS

from mmtpspike.datasets import CheckedLoadImageFromFile, UnreadableImageError


@pytest.fixture
def images(tmp_path):
    good = tmp_path / 'good.jpg'
    cv2.imwrite(str(good), np.full((6, 8, 3), 200, np.uint8))
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8 not a jpeg')
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    return dict(good=str(good), corrupt=str(corrupt), empty=str(empty),
                missing=str(tmp_path / 'missing.jpg'))


def test_reads_like_load_image_from_file(images):
    load = TRANSFORMS.build(dict(type='CheckedLoadImageFromFile'))
    results = load(dict(img_path=images['good']))
    assert results['img'].shape == (6, 8, 3)
    assert results['ori_shape'] == (6, 8)
    assert 'skip_unreadable=False' in repr(load)


@pytest.mark.parametrize('kind, reason', [
    ('corrupt', 'not a decodable image'),
    ('empty', 'error'),
    ('missing', 'file not found'),
])
def test_unreadable_image_is_named(images, kind, reason):
    load = CheckedLoadImageFromFile()
    with pytest.raises(UnreadableImageError) as info:
        load(dict(img_path=images[kind]))
    message = str(info.value)
    assert message.startswith(f'cannot read image {images[kind]} (')
    assert reason in message.lower()
    assert '--skip-unreadable-images' in message


class Recorder(logging.Handler):
    """Keeps the messages logged to mmengine's current logger."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_skipped_images_are_counted_once_each(images):
    load = CheckedLoadImageFromFile(skip_unreadable=True)
    logger, recorder = MMLogger.get_current_instance(), Recorder()
    logger.addHandler(recorder)
    try:
        outputs = [load(dict(img_path=images[kind]))
                   for kind in ('corrupt', 'missing', 'corrupt')]
    finally:
        logger.removeHandler(recorder)
    assert outputs == [None, None, None]
    assert len(recorder.messages) == 2
    assert recorder.messages[0].startswith(
        f"skipped unreadable image {images['corrupt']}")
    assert recorder.messages[0].endswith(
        '1 unreadable image(s) skipped so far')
    assert recorder.messages[1].endswith(
        '2 unreadable image(s) skipped so far')
    assert load(dict(img_path=images['good']))['img'] is not None


def test_message_survives_dataloader_worker_reraise():
    """DataLoader workers re-raise ``type(err)(worker traceback text)``."""
    text = ('Caught UnreadableImageError in DataLoader worker process 0.\n'
            'Original Traceback (most recent call last):\n  File "x.py"\n'
            'mmtpspike.datasets.transforms.UnreadableImageError: cannot read '
            'image a.jpg (file not found): fix or remove the file\n')
    assert str(UnreadableImageError(text)) == \
        'cannot read image a.jpg (file not found): fix or remove the file'
