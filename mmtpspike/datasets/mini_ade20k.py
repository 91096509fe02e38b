"""The bundled mini ADE20K-format semantic segmentation set."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class MiniADE20KDataset(BaseSegDataset):
    """Mini ADE20K-format set made by
    ``tools/dataset_converters/make_mini_ade20k.py``
    (``data/mini_ade_textured``, the demo data, and the first, tinted
    ``data/mini_ade``).

    The layout is that of ``ADEChallengeData2016``: ``images/{training,
    validation}/*.jpg`` with single-channel uint8 label maps of the same stem
    in ``annotations/{training,validation}/*.png``.  The label convention is
    ADE20K's: PNG value 0 means "other / unlabelled" and is ignored, and PNG
    value ``v`` (1..5) is class ``v - 1``.  With ``reduce_zero_label=True``
    (the default) the loaded maps hold 0 (background), 1 (circle),
    2 (square), 3 (triangle), 4 (stripes) and 255 (ignore).

    Args:
        img_suffix (str): Suffix of images. Defaults to '.jpg'.
        seg_map_suffix (str): Suffix of label maps. Defaults to '.png'.
        reduce_zero_label (bool): Whether to map PNG value 0 to the ignore
            index and ``v`` to ``v - 1``. Defaults to True.
        **kwargs: Other arguments of :class:`mmseg.datasets.BaseSegDataset`
            (``data_root``, ``data_prefix``, ``pipeline``, ...).
    """
    METAINFO = dict(
        classes=('background', 'circle', 'square', 'triangle', 'stripes'),
        palette=[[120, 120, 120], [220, 20, 60], [0, 130, 255],
                 [20, 160, 20], [250, 170, 30]])

    def __init__(self,
                 img_suffix='.jpg',
                 seg_map_suffix='.png',
                 reduce_zero_label=True,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
