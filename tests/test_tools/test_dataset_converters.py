"""The generators of the bundled mini datasets and the data they made.

Each generator has two fill modes: ``textured`` (shapes cut from colour
photos; ``data/mini_coco_textured``, ``data/mini_ade_textured``, the demo
data) and ``tinted`` (``data/mini_coco``, ``data/mini_ade``). ``--check``
regenerates each set into a temporary directory and compares file hashes
with the committed files under ``data/``; the other tests read the committed
files only.
"""
import glob
import json
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from tool_runner import REPO_ROOT, call_main, run_tool

MODES = ('textured', 'tinted')
MINI_COCO = {
    'textured': osp.join(REPO_ROOT, 'data', 'mini_coco_textured'),
    'tinted': osp.join(REPO_ROOT, 'data', 'mini_coco'),
}
MINI_ADE = {
    'textured': osp.join(REPO_ROOT, 'data', 'mini_ade_textured'),
    'tinted': osp.join(REPO_ROOT, 'data', 'mini_ade'),
}
ADE_SPLITS = ('training', 'validation')


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('script', [
    'tools/dataset_converters/make_mini_coco.py',
    'tools/dataset_converters/make_mini_ade20k.py',
])
def test_check_matches_committed_data(script, mode):
    # run_tool asserts exit status 0; the default --out follows the mode
    output = run_tool(script, '--check', '--mode', mode, timeout=300)
    assert f'matches a fresh {mode} generation with seed 0' in output


def test_check_reports_a_changed_file(tmp_path):
    data = tmp_path / 'mini_ade'
    shutil.copytree(MINI_ADE['textured'], data)
    label = data / 'annotations' / 'validation' / 'ADE_val_00000002.png'
    label.write_bytes(label.read_bytes() + b'\0')
    result = call_main('tools/dataset_converters/make_mini_ade20k.py',
                       '--check', '--out', data)
    assert result.returncode == 1, result.stderr
    assert 'in 1 file(s): annotations/validation/ADE_val_00000002.png' in \
        result.stderr


def load_coco(mode, split):
    with open(osp.join(MINI_COCO[mode], 'annotations',
                       f'instances_{split}.json')) as f:
        return json.load(f)


@pytest.mark.parametrize('mode', MODES)
def test_mini_coco_categories(mode):
    for split in ('train', 'val'):
        categories = sorted(
            (c['id'], c['name']) for c in load_coco(mode, split)['categories'])
        assert categories == [(1, 'circle'), (2, 'square'), (3, 'triangle'),
                              (4, 'star')]


@pytest.mark.parametrize('mode', MODES)
def test_mini_coco_edge_cases(mode):
    for split in ('train', 'val'):
        coco = load_coco(mode, split)
        annotated = {ann['image_id'] for ann in coco['annotations']}
        empty = [img['file_name'] for img in coco['images']
                 if img['id'] not in annotated]
        assert empty == (['000001.jpg'] if split == 'val' else []), split
        tiny = [ann['bbox'] for ann in coco['annotations']
                if max(ann['bbox'][2:]) < 8]
        assert tiny, f'{split} has no box smaller than 8 px'


def stem(path):
    return osp.splitext(osp.basename(path))[0]


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('split', ADE_SPLITS)
def test_mini_ade_label_maps(mode, split):
    root = MINI_ADE[mode]
    pngs = sorted(glob.glob(osp.join(root, 'annotations', split, '*.png')))
    jpgs = sorted(glob.glob(osp.join(root, 'images', split, '*.jpg')))
    assert pngs
    assert [stem(p) for p in pngs] == [stem(j) for j in jpgs]
    for png, jpg in zip(pngs, jpgs):
        with Image.open(png) as label, Image.open(jpg) as img:
            assert label.mode == 'L', png
            assert label.size == img.size, png
            values = set(np.unique(np.asarray(label)).tolist())
        assert values <= set(range(6)), (png, values)


def block_spread(image, mask, block=8):
    """Spread of an object's appearance at token scale: the standard
    deviation, over the ``block`` x ``block`` cells lying fully inside
    ``mask``, of their mean colour (mean over RGB); None below 4 cells."""
    height, width = (side // block * block for side in mask.shape)
    cells = (height // block, block, width // block, block)
    inside = mask[:height, :width].reshape(cells).all(axis=(1, 3))
    means = image[:height, :width].astype(np.float64).reshape(
        cells + (3, )).mean(axis=(1, 3))
    return means[inside].std(axis=0).mean() if inside.sum() >= 4 else None


def test_textured_objects_carry_texture_inside():
    """What the textured set is for: objects are not flat at the scale of a
    token. Their 8 x 8 cells vary several times more than in the tinted set
    (measured: median 24.6 vs 3.3 grey levels)."""
    from pycocotools import mask as mask_utils
    spread = {}
    for mode in MODES:
        coco = load_coco(mode, 'train')
        images = {img['id']: img for img in coco['images']}
        values = []
        for ann in coco['annotations']:
            img = images[ann['image_id']]
            rles = mask_utils.frPyObjects(ann['segmentation'], img['height'],
                                          img['width'])
            mask = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
            with Image.open(osp.join(MINI_COCO[mode], 'train',
                                     img['file_name'])) as file:
                value = block_spread(np.asarray(file.convert('RGB')), mask)
            if value is not None:
                values.append(value)
        assert len(values) >= 30, (mode, len(values))
        spread[mode] = float(np.median(values))
    assert spread['textured'] > 4 * spread['tinted'], spread
