"""The generators of the bundled mini datasets and the data they made.

``--check`` regenerates each set into a temporary directory and compares
file hashes with the committed files under ``data/``; the other tests read
the committed files only.
"""
import glob
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from tool_runner import REPO_ROOT, run_tool

MINI_COCO = osp.join(REPO_ROOT, 'data', 'mini_coco')
MINI_ADE = osp.join(REPO_ROOT, 'data', 'mini_ade')
ADE_SPLITS = ('training', 'validation')


@pytest.mark.parametrize('script', [
    'tools/dataset_converters/make_mini_coco.py',
    'tools/dataset_converters/make_mini_ade20k.py',
])
def test_check_matches_committed_data(script):
    # run_tool asserts exit status 0
    output = run_tool(script, '--check', timeout=300)
    assert 'matches a fresh generation with seed 0' in output


def load_coco(split):
    with open(osp.join(MINI_COCO, 'annotations',
                       f'instances_{split}.json')) as f:
        return json.load(f)


def test_mini_coco_categories():
    for split in ('train', 'val'):
        categories = sorted(
            (c['id'], c['name']) for c in load_coco(split)['categories'])
        assert categories == [(1, 'circle'), (2, 'square'), (3, 'triangle'),
                              (4, 'star')]


def test_mini_coco_edge_cases():
    for split in ('train', 'val'):
        coco = load_coco(split)
        annotated = {ann['image_id'] for ann in coco['annotations']}
        empty = [img['file_name'] for img in coco['images']
                 if img['id'] not in annotated]
        assert empty == (['000001.jpg'] if split == 'val' else []), split
        tiny = [ann['bbox'] for ann in coco['annotations']
                if max(ann['bbox'][2:]) < 8]
        assert tiny, f'{split} has no box smaller than 8 px'


def stem(path):
    return osp.splitext(osp.basename(path))[0]


@pytest.mark.parametrize('split', ADE_SPLITS)
def test_mini_ade_label_maps(split):
    pngs = sorted(
        glob.glob(osp.join(MINI_ADE, 'annotations', split, '*.png')))
    jpgs = sorted(glob.glob(osp.join(MINI_ADE, 'images', split, '*.jpg')))
    assert pngs
    assert [stem(p) for p in pngs] == [stem(j) for j in jpgs]
    for png, jpg in zip(pngs, jpgs):
        with Image.open(png) as label, Image.open(jpg) as img:
            assert label.mode == 'L', png
            assert label.size == img.size, png
            values = set(np.unique(np.asarray(label)).tolist())
        assert values <= set(range(6)), (png, values)
