"""Image loading that names unreadable files, or skips them on request."""
import logging
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS

from mmtpspike.utils.config import SetupError

SKIP_OPTION = '--skip-unreadable-images'


class UnreadableImageError(SetupError):
    """An image file is missing or cannot be decoded.

    DataLoader workers re-raise an exception as ``type(err)(text)``, where
    ``text`` is the worker's whole traceback; only its last message is kept,
    so the error reads the same with and without workers.
    """

    def __init__(self, message: str) -> None:
        marker = f'{type(self).__name__}: '
        if marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


def _reason(err: Exception) -> str:
    """Why an image could not be read, in a few words."""
    if isinstance(err, FileNotFoundError):
        return 'file not found'
    if isinstance(err, AssertionError):  # mmcv: the decoder returned None
        return 'not a decodable image'
    return f'{type(err).__name__}: {err}'.splitlines()[0]


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with a clear answer to unreadable files.

    A missing, empty or corrupt image raises :class:`UnreadableImageError`
    naming the file and the fix. With ``skip_unreadable=True`` the transform
    instead returns ``None``, which makes an mmengine dataset in training
    mode load another sample, and warns once per file with the number of
    unreadable files this process has met so far. (Evaluation datasets
    cannot skip samples: mmengine refuses ``None`` in test mode.)

    ``tools/train.py`` and ``tools/test.py`` load images with it in place of
    ``LoadImageFromFile``; ``--skip-unreadable-images`` sets
    ``skip_unreadable`` in the training pipeline.

    Args:
        skip_unreadable (bool): Skip unreadable images with a warning instead
            of raising. Defaults to False.
        **kwargs: Arguments of ``LoadImageFromFile`` (``to_float32``,
            ``color_type``, ``imdecode_backend``, ``backend_args``, ...).
    """

    def __init__(self, skip_unreadable: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip_unreadable = skip_unreadable
        self._skipped = set()

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']`` into ``img`` (``[H, W, C]``)."""
        path = results['img_path']
        try:
            return super().transform(results)
        except Exception as err:  # any failure leaves the sample imageless
            reason = _reason(err)
        if not self.skip_unreadable:
            raise UnreadableImageError(
                f'cannot read image {path} ({reason}): fix or remove the '
                f'file, or pass {SKIP_OPTION} to tools/train.py to skip '
                f'unreadable training images')
        if path not in self._skipped:
            self._skipped.add(path)
            print_log(
                f'skipped unreadable image {path} ({reason}); '
                f'{len(self._skipped)} unreadable image(s) skipped so far',
                logger='current', level=logging.WARNING)
        return None

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, '
                f'skip_unreadable={self.skip_unreadable})')
