"""mmtpspike.analysis.model_io: library seams and model inputs."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmtpspike.analysis.model_io import build_model, to_input

LIBRARY_IMPORTS = """
import pkgutil, sys
sys.modules['mmtpspike.utils.launch'] = None  # importing it now fails
import mmtpspike
for module in pkgutil.walk_packages(mmtpspike.__path__, 'mmtpspike.'):
    if module.name != 'mmtpspike.utils.launch':
        __import__(module.name)
"""


def test_library_does_not_import_the_cli_helpers(repo_root):
    """Every library module imports without ``mmtpspike.utils.launch``
    (the set-up code of tools/train.py and tools/test.py); a failure shows
    the import chain that needs it."""
    result = subprocess.run([sys.executable, '-c', LIBRARY_IMPORTS],
                            cwd=repo_root, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize('config', [
    'configs/det/sdtv3_tp_coco_demo.py', 'configs/seg/sdtv3_tp_ade20k_demo.py'
])
def test_to_input_normalises_as_configured(repo_root, config):
    """BGR images come out RGB, normalised with the config's mean / std, at
    exactly the requested shape although it is not a multiple of the
    preprocessor's pad divisor (32 for the detector)."""
    model, cfg = build_model(f'{repo_root}/{config}')
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
              for _ in range(2)]
    inputs = to_input(images, (50, 70), model)
    assert inputs.shape == (2, 3, 50, 70)
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.bgr_to_rgb
    mean = torch.tensor(preprocessor.mean).view(3, 1, 1)
    std = torch.tensor(preprocessor.std).view(3, 1, 1)
    for image, tensor in zip(images, inputs):
        rgb = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1)
        torch.testing.assert_close(tensor, (rgb.float() - mean) / std)


def test_to_input_resizes(repo_root):
    model, _ = build_model(f'{repo_root}/configs/seg/sdtv3_ade20k_demo.py')
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[:10] = 255
    inputs = to_input([image], (40, 60), model)
    assert inputs.shape == (1, 3, 40, 60)
    top, bottom = inputs[0, :, :18], inputs[0, :, 22:]
    assert (top > 1).all() and (bottom < -1).all()


def test_checkpoint_with_other_neurons_is_refused(repo_root, tmp_path):
    """The analysis tools load weights with the same neuron check as the
    runner: a D = 4 checkpoint does not go into a D = 2 model."""
    from mmtpspike.utils.spiking_meta import (NeuronMismatchError,
                                              collect_spiking_meta)
    config = os.path.join(repo_root, 'configs/det/sdtv3_tp_coco_demo.py')
    model, _ = build_model(config)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(mmtpspike=collect_spiking_meta(model))), path)
    build_model(config, path)  # same settings: fine
    with pytest.raises(NeuronMismatchError, match="'max_spikes': 4"):
        build_model(config, path, cfg_options={
            'model.backbone.spike_cfg': dict(type='MultiSpike',
                                             max_spikes=2)})
