"""tools/analysis/benchmark_events.py runs and reports both measurements
(small sizes; the numbers are the benchmark's business, not the test's)."""
import re

from tool_runner import call_main


def test_benchmark_reports_decode_and_histogram():
    result = call_main('tools/analysis/benchmark_events.py',
                       '--num-events', '20000', '--window-events', '3000',
                       '--repeats', '1')
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r'decode 20000 events .*\n  ours .* M events/s; '
                     r'baseline .* ratio [\d.]+x', out)
    assert re.search(r'one 50 ms window: ours \(bisection\)', out)
    assert re.search(r'window of 3000 events -> \[10, 2, 240, 304\] '
                     r'\(equal outputs\)', out)
    assert re.search(r'ours \(bincount per bin\) [\d.]+ ms '
                     r'\([\d.]+ ns per event\)', out)
    assert 'target >= 100 M events/s' in out and 'target < 5 ms' in out
