"""Loading mmdet / mmseg configs with clear errors for bad input.

Library code (``mmtpspike.analysis``) and the command-line tools share these;
the tools turn a :class:`SetupError` into one ``error:`` line.
"""
import os.path as osp
from typing import Optional

from mmengine.config import Config

SCOPES = ('mmdet', 'mmseg')


class SetupError(RuntimeError):
    """Bad input (config, data, checkpoint, image) detected before a model
    runs; the message names the problem and the fix."""


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Load a config, apply ``--cfg-options`` and check its scope.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Overrides, as ``--cfg-options`` gives
            them (``{'model.backbone.pruning.keep_ratios': 0.56}``).

    Returns:
        Config: The merged config.

    Raises:
        SetupError: Missing file or an unsupported ``default_scope``.
    """
    if not osp.isfile(path):
        raise SetupError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise SetupError(f"config {path} has default_scope={scope!r}; "
                         f"mmtpspike tools support {SCOPES}")
    return cfg
