#!/usr/bin/env python3
"""Turns `dskit_bench --benchmark_format=json` output into a markdown table.

    build/bench/benchmarks/dskit_bench --benchmark_format=json > bench.json
    python3 benchmarks/table.py bench.json

Columns: benchmark name, time per iteration, its GFLOPS or GBps counter, the speed-up of the simd
backend over the scalar one for the same <area>/<op>/<shape>, and for GFLOPS results the fraction
of the same backend's measured fp32 FMA peak (peak/fma_f32/<backend>, one core). Only the standard
library is used.
"""
import json
import sys

TIME_SCALE = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def clean(name):
    # Google Benchmark appends "/real_time" (and "_mean" etc. for aggregates) to the names.
    for suffix in ("/real_time", "/process_time"):
        name = name.replace(suffix, "")
    return name


def split(name):
    """('kernels', 'softmax', 'simd', '4096x4096') for 'kernels/softmax/simd/4096x4096'."""
    parts = name.split("/")
    if len(parts) < 3:
        return None
    return parts[0], parts[1], parts[2], "/".join(parts[3:])


def fmt_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        data = json.load(f)

    rows = []
    benchmarks = data.get("benchmarks", [])
    # With --benchmark_repetitions, show the median of each benchmark only.
    repeated = any(b.get("run_type") == "aggregate" for b in benchmarks)
    for b in benchmarks:
        if repeated and (b.get("run_type") != "aggregate" or b.get("aggregate_name") != "median"):
            continue
        name = clean(b.get("run_name", b["name"]))
        seconds = b["real_time"] * TIME_SCALE[b.get("time_unit", "ns")]
        counter = None
        for key in ("GFLOPS", "GBps"):
            if key in b:
                counter = (key, float(b[key]))
        rows.append({"name": name, "seconds": seconds, "counter": counter})

    time_of = {r["name"]: r["seconds"] for r in rows}
    rate_of = {r["name"]: r["counter"] for r in rows if r["counter"]}
    peak = {}
    for r in rows:
        parts = split(r["name"])
        if parts and parts[0] == "peak" and parts[1] == "fma_f32" and r["counter"]:
            peak[parts[2]] = r["counter"][1]

    print("| benchmark | time | rate | simd speed-up | of fp32 FMA peak |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        parts = split(r["name"])
        rate = f"{r['counter'][1]:.3g} {r['counter'][0]}" if r["counter"] else ""
        speedup = ""
        if parts and parts[2] == "simd":
            scalar = "/".join(p for p in (parts[0], parts[1], "scalar", parts[3]) if p)
            if scalar in rate_of and r["counter"] and rate_of[scalar][0] == r["counter"][0]:
                # Same counter (e.g. peak FLOPS of different work per iteration): compare rates.
                speedup = f"{r['counter'][1] / rate_of[scalar][1]:.1f}x"
            elif scalar in time_of:
                speedup = f"{time_of[scalar] / r['seconds']:.1f}x"
        frac = ""
        if parts and r["counter"] and r["counter"][0] == "GFLOPS" and parts[0] != "peak" and parts[2] in peak:
            frac = f"{100.0 * r['counter'][1] / peak[parts[2]]:.0f}%"
        print(f"| {r['name']} | {fmt_time(r['seconds'])} | {rate} | {speedup} | {frac} |")
    ctx = data.get("context", {})
    print()
    print(f"{ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at {ctx.get('mhz_per_cpu', '?')} MHz, "
          f"{ctx.get('date', '')}. Peak = single core; multi-threaded results can exceed 100%.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
