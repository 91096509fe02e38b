"""Compute an event config's frames once, for trainings of many epochs.

    python tools/dataset_converters/precompute_event_frames.py CONFIG \
        [--splits train val test] [--out-dir DIR] [--overwrite]
        [--cfg-options ...]

For each split, every labelled timestamp of the split's dataset (as the
config builds it) is read with the config's ``LoadEventWindow`` and turned
into frames by its representation (``EventHistogram`` /
``EventSpikeFrames``); each recording's frames go into one compressed
``DIR/<split>/<recording>.npz`` (default ``DIR``: ``<data_root>/frames``),
with the settings that made them. A progress bar counts the samples. The
tool then prints the pipeline step that reads them,
``dict(type='LoadEventFrames', frames_folder=..., window_us=...,
representation=...)``, to put in place of ``LoadEventWindow`` in the
config's pipelines, with the representation step removed (a config of your
own); frames of other settings are refused when read.
"""
import argparse
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple

from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from mmtpspike.datasets.events.precomputed_frames import (frames_path,
                                                          write_frames)
from mmtpspike.datasets.events.transforms import (EventFrames,
                                                  LoadEventWindow,
                                                  frame_settings)
from mmtpspike.utils.config import SetupError, load_config
from mmtpspike.utils.launch import friendly_errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='event config (configs/event_det/)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val',
                                                        'test'],
                        choices=['train', 'val', 'test'])
    parser.add_argument('--out-dir', help='default: <data_root>/frames')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace frames that exist')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def event_steps(pipeline: List[dict]) -> Tuple[int, int]:
    """Positions of the ``LoadEventWindow`` and the representation
    (``EventHistogram`` / ``EventSpikeFrames`` or a subclass) in a
    pipeline."""
    from mmdet.registry import TRANSFORMS
    steps = [TRANSFORMS.get(step['type']) for step in pipeline]
    loads = [i for i, cls in enumerate(steps) if cls is LoadEventWindow]
    frames = [i for i, cls in enumerate(steps)
              if isinstance(cls, type) and issubclass(cls, EventFrames)]
    if len(loads) != 1 or len(frames) != 1:
        raise SetupError(
            f'the pipeline {[step["type"] for step in pipeline]} needs one '
            'LoadEventWindow and one representation (EventHistogram / '
            'EventSpikeFrames) to precompute its frames')
    return loads[0], frames[0]


def build_split(cfg, split: str):
    """The split's dataset (no pipeline), its window reader and
    representation."""
    from mmdet.registry import DATASETS, TRANSFORMS
    dataset_cfg = cfg[f'{split}_dataloader']['dataset'].copy()
    load_index, frames_index = event_steps(dataset_cfg['pipeline'])
    load = TRANSFORMS.build(dataset_cfg['pipeline'][load_index])
    representation = TRANSFORMS.build(dataset_cfg['pipeline'][frames_index])
    dataset_cfg['pipeline'] = []
    return DATASETS.build(dataset_cfg), load, representation


def samples_by_recording(dataset) -> Dict[str, List[dict]]:
    """The dataset's data infos grouped by recording name."""
    groups = defaultdict(list)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        groups[info['recording']].append(info)
    return groups


def compute_frames(info: dict, load: LoadEventWindow,
                   representation: EventFrames):
    """``[T, 2, H', W']`` uint8 frames of one sample."""
    results = load(dict(info))
    height, width = results['ori_shape']
    return representation.frames_fn(
        results['events'], results['window_end_us'], results['window_us'],
        representation.num_bins, height, width, **representation.options())


def precompute_split(cfg, split: str, out_dir: str, overwrite: bool) -> dict:
    """Write one split's frames; return the reading step for its pipeline.
    """
    dataset, load, representation = build_split(cfg, split)
    folder = osp.join(out_dir, split)
    groups = samples_by_recording(dataset)
    existing = [frames_path(folder, r) for r in groups
                if osp.exists(frames_path(folder, r))]
    if existing and not overwrite:
        raise SetupError(f'{len(existing)} frame file(s) exist, e.g. '
                         f'{existing[0]}: pass --overwrite to replace them')
    os.makedirs(folder, exist_ok=True)
    settings = frame_settings(load.window_us, representation)
    print(f'{split}: {len(dataset)} samples of {len(groups)} recordings '
          f'-> {folder}')
    progress = ProgressBar(len(dataset))
    for recording, infos in groups.items():
        frames = {}
        for info in infos:
            frames[info['timestamp_us']] = compute_frames(
                info, load, representation)
            progress.update()
        write_frames(frames_path(folder, recording), frames, settings,
                     overwrite)
    print()
    pipeline = cfg[f'{split}_dataloader']['dataset']['pipeline']
    return dict(type='LoadEventFrames', frames_folder=folder,
                window_us=load.window_us,
                representation=pipeline[event_steps(pipeline)[1]])


@friendly_errors
def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    out_dir = args.out_dir or osp.join(
        cfg.train_dataloader.dataset.get('data_root', ''), 'frames')
    steps = {split: precompute_split(cfg, split, out_dir, args.overwrite)
             for split in args.splits}
    print("Read them by replacing LoadEventWindow in each split's pipeline "
          'with the step below and removing the representation step:')
    for split, step in steps.items():
        print(f'  {split}: {step}')


if __name__ == '__main__':
    main()
