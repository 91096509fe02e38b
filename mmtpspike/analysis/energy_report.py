"""Tables, files and plots of :class:`~mmtpspike.analysis.energy.EnergyMeter`
measurements, one measurement per keep ratio.

* :func:`layer_rows`: one row per layer (``layers.csv``);
* :func:`summarize`: totals and per-stage sums, mean and spread over images
  (``summary.json``);
* :func:`markdown`: the printed summary;
* :func:`plot`: per-layer firing rate and energy, dense vs each keep ratio
  (``energy.png``).
"""
import csv
from collections import defaultdict
from typing import Dict, List, Sequence

from .energy import AC, MAC, EnergyCosts, EnergyMeter, mean_std, stage_of
from .model_io import EVENT_SAMPLES

CSV_FIELDS = ('keep', 'layer', 'stage', 'type', 'kind', 'input_shape',
              'firing_rate_mean', 'firing_rate_std', 'flops', 'macs', 'sops',
              'energy_uj')
PJ_PER_UJ, PJ_PER_MJ, PER_GIGA = 1e6, 1e9, 1e9
#: fewest layers between two stage labels of the plot (7 pt labels)
MIN_TICK_GAP = 3


def shape_text(shapes: Sequence[tuple]) -> str:
    """``'1x24x64x96'``, plus how many other shapes were seen."""
    text = 'x'.join(str(s) for s in shapes[0])
    return text if len(shapes) == 1 else f'{text} (+{len(shapes) - 1} more)'


def layer_rows(meter: EnergyMeter, keep: float, costs: EnergyCosts,
               num_timesteps: int) -> List[dict]:
    """One row per layer: per-image means (and the firing rate's std).

    Args:
        meter (EnergyMeter): the measurement at ``keep``.
        keep (float): keep ratio of the measurement.
        costs (EnergyCosts): energy per operation.
        num_timesteps (int): ``T``; ``flops = macs / T``.

    Returns:
        list[dict]: rows with the keys of :data:`CSV_FIELDS`.
    """
    rows = []
    for name, layer in meter.layers.items():
        rate, rate_std = mean_std(layer.rates())
        macs = mean_std(layer.macs)[0]
        rows.append(dict(
            keep=keep, layer=name, stage=stage_of(name), type=layer.type,
            kind=layer.kind, input_shape=shape_text(layer.shapes),
            firing_rate_mean=rate, firing_rate_std=rate_std,
            flops=macs / num_timesteps, macs=macs,
            sops=mean_std(layer.sops)[0],
            energy_uj=mean_std(layer.energies_pj(costs))[0] / PJ_PER_UJ))
    return rows


def write_csv(rows: Sequence[dict], path: str) -> None:
    """Write rows; a MAC layer's firing rate is left empty."""
    with open(path, 'w', newline='') as file:
        writer = csv.DictWriter(file, CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: '' if v != v else v for k, v in row.items()})


def _per_image_totals(meter: EnergyMeter, costs: EnergyCosts,
                      names: Sequence[str]) -> Dict[str, List[float]]:
    """MACs, MAC-layer MACs, SOPs and energy (pJ) per image, summed over
    the layers ``names``."""
    totals = {key: [0.] * meter.num_samples
              for key in ('macs', 'mac_layer_macs', 'sops', 'energy_pj')}
    for name in names:
        layer = meter.layers[name]
        energies = layer.energies_pj(costs)
        for image in range(meter.num_samples):
            macs = layer.macs[image]
            totals['macs'][image] += macs
            totals['mac_layer_macs'][image] += macs if layer.kind == MAC \
                else 0
            totals['sops'][image] += layer.sops[image]
            totals['energy_pj'][image] += energies[image]
    return totals


def _spread(values: List[float], scale: float) -> dict:
    mean, std = mean_std(values)
    return dict(mean=mean / scale, std=std / scale)


def _group_summary(meter: EnergyMeter, costs: EnergyCosts,
                   names: Sequence[str]) -> dict:
    """Totals of the layers ``names``: GMACs, GSOPs, energy (mJ) as mean and
    std over images, and their mean input firing rate (SOPs / MACs of the AC
    layers, i.e. weighted by each layer's fan-out; None without AC
    layers)."""
    totals = _per_image_totals(meter, costs, names)
    ac_macs = sum(sum(meter.layers[n].macs) for n in names
                  if meter.layers[n].kind == AC)
    sops = sum(totals['sops'])
    return dict(
        gmacs=_spread(totals['macs'], PER_GIGA),
        mac_layer_gmacs=_spread(totals['mac_layer_macs'], PER_GIGA),
        gsops=_spread(totals['sops'], PER_GIGA),
        energy_mj=_spread(totals['energy_pj'], PJ_PER_MJ),
        firing_rate=sops / ac_macs if ac_macs else None)


def summarize(meter: EnergyMeter, keep: float, costs: EnergyCosts) -> dict:
    """Totals and per-stage sums of one measurement (see
    :func:`_group_summary`), with the number of images."""
    stages = defaultdict(list)
    for name in meter.layers:
        stages[stage_of(name)].append(name)
    return dict(
        keep=keep, num_images=meter.num_samples,
        total=_group_summary(meter, costs, list(meter.layers)),
        stages={stage: _group_summary(meter, costs, names)
                for stage, names in stages.items()})


def _rate_text(rate) -> str:
    return '-' if rate is None else f'{rate:.3f}'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def _totals_table(settings: Sequence[dict]) -> str:
    base = settings[0]['total']['energy_mj']['mean']
    rows = []
    for setting in settings:
        total = setting['total']
        energy = total['energy_mj']
        rows.append([
            f"{setting['keep']:.2f}", f"{total['gmacs']['mean']:.3f}",
            f"{total['mac_layer_gmacs']['mean']:.3f}",
            f"{total['gsops']['mean']:.3f}", _rate_text(total['firing_rate']),
            f"{energy['mean']:.3f} ± {energy['std']:.3f}",
            f"{energy['mean'] / base:.3f}"
        ])
    return _table([
        'keep', 'GMACs', 'MAC-layer GMACs', 'GSOPs', 'firing rate',
        'energy (mJ)', f"energy vs keep {settings[0]['keep']:.2f}"
    ], rows)


def _stage_table(settings: Sequence[dict]) -> str:
    stages = list(dict.fromkeys(
        stage for setting in settings for stage in setting['stages']))
    rows = []
    for stage in stages:
        cells = [stage]
        for setting in settings:
            group = setting['stages'].get(stage)
            cells.append('-' if group is None else
                         f"{group['energy_mj']['mean']:.4f} / "
                         f"{_rate_text(group['firing_rate'])}")
        rows.append(cells)
    return _table(['stage'] + [f"keep {s['keep']:.2f}" for s in settings],
                  rows)


#: printed for event input
EVENT_INPUT_NOTE = (
    'input: event frames (per-polarity event counts per time bin); integer '
    'counts are spikes, so the encoding conv reading them is an AC layer, '
    'one accumulate per event and synapse (the kind column of layers.csv)')


def markdown(report: dict) -> str:
    """The printed summary of a report (see ``tools/analysis/energy.py``)."""
    settings = report['settings']
    costs = report['energy_model']
    return '\n'.join([
        f"{report['config']} | {report['measured']} | "
        f"{report['num_images']} test {report['input']} | T = "
        f"{report['timesteps']}, D = {report['max_spikes']}",
        '',
        _totals_table(settings),
        '',
        'energy (mJ) / input firing rate per stage:',
        _stage_table(settings),
        '',
        f"energy model: E = {costs['e_mac_pj']} pJ x MACs (MAC layers: "
        f"real-valued input) + {costs['e_ac_pj']} pJ x SOPs (AC layers: "
        'spike input); means (± std) over images; firing rate = spikes per '
        'input neuron and timestep (MAC-weighted); an estimate, not a '
        'measurement on neuromorphic hardware',
    ] + ([EVENT_INPUT_NOTE] if report['input'] == EVENT_SAMPLES else []))


def _group_ticks(groups: Sequence[str],
                 starts: Sequence[int]) -> Dict[int, str]:
    """Tick labels ``{layer index: text}`` at the first layer of each stage
    group; a group starting closer than :data:`MIN_TICK_GAP` layers to the
    previous one and differing from it only in an index (the neck's levels)
    shares its label, ``prefix.*``."""
    ticks = {}
    label, previous, previous_prefix = None, None, None
    for group, start in zip(groups, starts):
        head, _, tail = group.rpartition('.')
        prefix = head if tail.isdigit() else group
        if prefix == previous_prefix and start - previous < MIN_TICK_GAP:
            ticks[label] = prefix + '.*'
        else:
            label = start
            ticks[label] = group
        previous, previous_prefix = start, prefix
    return ticks


def plot(rows_by_keep: Dict[float, List[dict]], path: str) -> None:
    """Per-layer firing rate (top) and energy (bottom, log scale), one line
    per keep ratio, layers in the order they first ran; writes a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    order = list(dict.fromkeys(
        row['layer'] for rows in rows_by_keep.values() for row in rows))
    stages = [stage_of(name) for name in order]
    fig, (rate_ax, energy_ax) = plt.subplots(
        2, 1, sharex=True, figsize=(max(8., len(order) * 0.08), 7))
    for keep, rows in rows_by_keep.items():
        by_layer = {row['layer']: row for row in rows}
        rates = [by_layer[n]['firing_rate_mean'] if n in by_layer else
                 float('nan') for n in order]
        energies = [by_layer[n]['energy_uj'] if n in by_layer else
                    float('nan') for n in order]
        label = 'dense' if keep >= 1 else f'keep {keep:.2f}'
        rate_ax.plot(rates, '.-', label=label, linewidth=0.8, markersize=3)
        energy_ax.plot(energies, '.-', label=label, linewidth=0.8,
                       markersize=3)
    starts = [i for i, stage in enumerate(stages)
              if i == 0 or stage != stages[i - 1]]
    for ax in (rate_ax, energy_ax):
        for start in starts[1:]:
            ax.axvline(start - 0.5, color='0.8', linewidth=0.6)
    ticks = _group_ticks([stages[i] for i in starts], starts)
    energy_ax.set_xticks(list(ticks))
    energy_ax.set_xticklabels(list(ticks.values()), rotation=90, fontsize=7)
    rate_ax.set_ylabel('input firing rate\n(spikes / neuron / step)')
    energy_ax.set_ylabel('energy per image (µJ)')
    energy_ax.set_yscale('log')
    rate_ax.legend(fontsize=8)
    rate_ax.set_title('per-layer input firing rate and energy '
                      '(MAC layers have no firing rate)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
