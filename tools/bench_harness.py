"""The timing harness of tools/bench_*.py: one measurement (wall and CPU seconds, peak memory), interleaved
rounds of variants after a warm-up, min/median and their ratios, the variant table and the JSON summary.
Figures are printed, never asserted: they depend on the machine and on what else runs on it.

    times, peaks = interleaved({"a": fa, "b": fb}, rounds=5, device=device)   # seconds per call, peak bytes
    report("title", times, peaks, per=n_images)                                # one line per variant
"""
import gc
import json
import os
import statistics
import sys
import time


def sync(device):
    """Wait for a GPU's queued work, so that the clock stops when the work does (nothing to wait for on a CPU)."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class PeakMemory:
    """Peak growth of memory during a block, in bytes: torch's peak allocation on a GPU; on a CPU the peak
    resident size (Linux VmHWM, reset at the start through /proc/self/clear_refs) above the resident size at
    the start; nan where the peak cannot be reset."""

    def __init__(self, device=None):
        self.cuda, self.peak = str(device).startswith("cuda"), float("nan")

    def __enter__(self):
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current resident size
            self.base = status_kb("VmRSS") * 1024
        except OSError:
            self.base = None
        return self

    def __exit__(self, *exc):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        elif self.base is not None:
            self.peak = status_kb("VmHWM") * 1024 - self.base


def measure(fn, device=None):
    """(fn(), wall seconds, CPU seconds of the process (user + system), peak bytes above the start) of one call;
    the GPU's queue drained before and after."""
    gc.collect()
    sync(device)
    with PeakMemory(device) as mem:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return out, wall, cpu, mem.peak


def schedule(names, rounds, rotate=False):
    """The order of interleaved rounds, one list of every name per round (A B A B ...: a machine that gets
    busier or quieter slows every variant alike); rotate: each round starts one name later."""
    names = list(names)
    for r in range(rounds):
        shift = r % len(names) if rotate else 0
        yield names[shift:] + names[:shift]


def interleaved(variants, rounds, device=None, warmup=1, repeats=1):
    """({name: [seconds per call, one per round]}, {name: peak bytes of its largest round}) from `warmup`
    untimed calls of each variant, then `rounds` interleaved rounds of `repeats` calls each."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times, peaks = {k: [] for k in variants}, {k: [] for k in variants}
    for order in schedule(variants, rounds):
        for name in order:
            _, wall, _, peak = measure(lambda f=variants[name]: [f() for _ in range(repeats)], device)
            times[name].append(wall / repeats)
            peaks[name].append(peak)
    return times, {k: max(v) for k, v in peaks.items()}


def low_mid(values):
    """(min, median): the min is the least disturbed figure, the median the typical one."""
    return min(values), statistics.median(values)


def ratios(a, b):
    """a / b at the min and at the median."""
    (a_lo, a_mid), (b_lo, b_mid) = low_mid(a), low_mid(b)
    return a_lo / b_lo, a_mid / b_mid


def report(title, times, peaks, per=1):
    """One line per variant: min/median ms per item (per: items per call) and peak MB; speed-ups over the first."""
    print(title)
    base = next(iter(times))
    for name, t in times.items():
        lo, mid = (s / per for s in low_mid(t))
        ratio = ""
        if name != base:
            up = ratios(times[base], t)
            ratio = f"   speed-up over {base}: {up[0]:.2f}x (min), {up[1]:.2f}x (median)"
        print(f"  {name:28s} min {lo * 1000:8.2f} ms  median {mid * 1000:8.2f} ms  peak {peaks[name] / 2**20:7.1f} MB"
              f"{ratio}")


def machine():
    return (f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end, "
            f"Python {sys.version.split()[0]}")


def print_json(summary, indent=None):
    """The figures once more, as one JSON document, for a script or a notebook to read."""
    print(json.dumps(summary, indent=indent))
