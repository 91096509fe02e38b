"""tools/analysis/complexity.py without a checkpoint: BN is calibrated
first, so the untrained network fires and pruning lowers SOPs and energy."""
import json

from tool_runner import run_tool

DET_DEMO = 'configs/det/sdtv3_tp_coco_demo.py'


def complexity(tmp_path, *options):
    out = tmp_path / 'report.json'
    stdout = run_tool('tools/analysis/complexity.py', DET_DEMO, '--shape',
                      '96', '128', '--keep', '1.0', '0.56', '--out', str(out),
                      *options)
    return stdout, json.loads(out.read_text())


def test_untrained_model_is_calibrated_by_default(tmp_path):
    stdout, report = complexity(tmp_path)
    assert ('no --checkpoint: BN statistics of the untrained model set from '
            '1 forward(s) of the 2 input image(s)') in stdout
    assert report['calibrate_bn'] == 1
    dense, pruned = report['settings']
    # the network fires: most MACs of the spike-driven layers become SOPs
    assert dense['gsops'] > 0.3 * dense['gmacs']
    assert pruned['gsops'] < dense['gsops']
    assert pruned['energy_mj'] < dense['energy_mj']


def test_calibration_turned_off_is_warned_about(tmp_path):
    stdout, report = complexity(tmp_path, '--calibrate-bn', '0')
    assert ('warning: no --checkpoint and --calibrate-bn 0: the untrained BN '
            'statistics leave most neurons silent') in stdout
    assert report['calibrate_bn'] == 0
    dense = report['settings'][0]
    assert dense['gsops'] < 0.05 * dense['gmacs']
