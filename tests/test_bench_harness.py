"""tools/bench_harness.py, the timing harness of the benchmark scripts: the order it runs variants in, what
it counts, and its peak memory (the figures themselves are printed by the scripts, never asserted)."""
import math
import mmap
import os
import sys
import time

import pytest

from tests.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "tools"))
import bench_harness  # noqa: E402


def test_rounds_interleave_the_variants_after_the_warm_up():
    calls = []
    variants = {name: (lambda n=name: calls.append(n)) for name in ("a", "b")}
    times, peaks = bench_harness.interleaved(variants, rounds=2, warmup=1, repeats=2)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 2
    assert [len(t) for t in times.values()] == [2, 2] and set(peaks) == {"a", "b"}
    assert list(bench_harness.schedule("abc", 3, rotate=True)) == [list("abc"), list("bca"), list("cab")]


def touched_pages(size):
    """`size` bytes of fresh anonymous memory, every page written: resident whatever the allocator keeps
    (a malloc in a long test process may reuse pages that are resident already)."""
    m = mmap.mmap(-1, size)
    for i in range(0, size, mmap.PAGESIZE):
        m[i] = 1
    return m


def busy(seconds=0.1):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_measure_counts_the_call_and_its_own_peak_memory():
    big = bytes(1) * (256 * 2 ** 20)  # a peak before the measurement, which it must not count
    del big
    _, wall, _, peak = bench_harness.measure(lambda: time.sleep(0.05))
    assert wall >= 0.05
    _, wall, cpu, _ = bench_harness.measure(busy)  # CPU seconds of the process: threads left spinning by
    assert cpu >= 0.5 * wall >= 0.05                # earlier tests may add to them, so only a lower bound
    kept, _, _, peak = bench_harness.measure(lambda: touched_pages(64 * 2 ** 20))
    if math.isnan(peak):
        pytest.skip("this kernel does not let a process reset its peak resident size")
    assert 60 * 2 ** 20 < peak < 200 * 2 ** 20, peak / 2 ** 20


def test_report_gives_the_speed_up_over_the_first_variant(capsys):
    assert bench_harness.ratios([2.0, 4.0, 6.0], [1.0, 2.0, 2.0]) == (2.0, 2.0)
    bench_harness.report("title", {"slow": [0.4, 0.6, 0.5], "fast": [0.1, 0.3, 0.2]}, {"slow": 0, "fast": 2 ** 20},
                         per=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "title" and "min   200.00 ms  median   250.00 ms" in out[1]
    assert "speed-up over slow: 4.00x (min), 2.50x (median)" in out[2] and "peak     1.0 MB" in out[2]
