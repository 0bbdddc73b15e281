#!/usr/bin/env python3
"""dskit attention against PyTorch on the same shapes and thread count, in one run.

Runs dskit_bench's attention benchmarks (JSON) and PyTorch's F.scaled_dot_product_attention plus
the PyTorch formulations of the variants (SPEC.md section 1; the gated units as the articles write
them, seed 000's einsum/softmax GAU and seed 001's nn.MultiheadAttention, each also against fused SDPA
times the gate; ALiBi as its reference code adds the bias to the scores (fairseq; BLOOM's baddbmm), also
against SDPA with the bias as a float mask; dynamic sparsity as a top-N/8 mask; decoding one token
against a K/V cache), then
prints one table:
dskit time, PyTorch time, and the ratio (PyTorch / dskit; above 1 means dskit is faster).

The two sides take turns, row by row: each of --reps rounds times dskit (one dskit_bench run of that
benchmark alone) and then PyTorch, and each side's time is the median over the rounds. On a shared
machine whose speed drifts by tens of percent within minutes, timing all of one side first and then
all of the other made the ratios swing by as much (plain attention, d = 64: 0.94x and 1.31x in two
runs an hour apart); alternating keeps both sides of a row in the same minutes.

    python3 benchmarks/peers/attention_vs_torch.py --bench build/bench/benchmarks/dskit_bench \
        --threads 2 --n 2048 --d 64 128

Needs torch (pip install torch). dskit_bench must be built with -DDSKIT_NATIVE_ARCH=ON.
"""
import argparse
import json
import math
import os
import subprocess
import time

import torch
import torch.nn.functional as F


def torch_variant(name, q, k, v, gamma=0.95, gate=None):
    """PyTorch formulation of one variant; q, k, v: [H, N, d]; gate: [H, N, 1] or [H, N, d] in (0, 1)."""
    H, N, d = q.shape
    if name in ("plain", "concentrated_dense"):
        return F.scaled_dot_product_attention(q, k, v)
    if name == "gate_head":  # seed 000 GAU as the article writes it: einsum scores, softmax, einsum, x gate
        attn = (torch.einsum("hid,hjd->hij", q, k) * d ** -0.5).softmax(dim=-1)
        return torch.einsum("hij,hjd->hid", attn, v) * gate
    if name == "gate_elem":  # seed 001 DynamicAttention: nn.MultiheadAttention (default need_weights=True:
        # explicit weights, also returned averaged over heads), then x sigmoid gate
        attn = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(d), -1)
        attn.mean(0)
        return (attn @ v) * gate
    if name in ("gate_head_sdpa", "gate_elem_sdpa"):  # the fastest PyTorch form: fused SDPA, then x gate
        return F.scaled_dot_product_attention(q, k, v) * gate
    if name in ("topk", "block_sparse", "block_sparse_eighth"):  # dynamic sparse attention (seed 004): keep the top N/8 keys per query
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        kth = s.topk(N // 8, dim=-1).values[..., -1:]
        return torch.softmax(s.masked_fill(s < kth, float("-inf")), -1) @ v
    if name == "causal":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    i = torch.arange(N).view(N, 1)
    j = torch.arange(N).view(1, N)
    if name == "decay_abs":  # seed 004 literal: S_ij = (q_i . k_j) gamma^j / sqrt(d)
        s = (q @ k.transpose(-1, -2)) * (gamma ** j.float()) / math.sqrt(d)
        return torch.softmax(s, -1) @ v
    if name == "decay_rel":  # causal, + (i - j) ln gamma_h, one gamma per head
        gammas = torch.linspace(0.9, 0.99, H).view(H, 1, 1)
        bias = (i - j).float() * torch.log(gammas)
        bias = bias.masked_fill(j > i, float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    if name in ("alibi", "alibi_sdpa"):
        slopes = torch.tensor([2 ** (-8 * (h + 1) / H) for h in range(H)]).view(H, 1, 1)
        bias = -slopes * (i - j).abs().float()
        if name == "alibi":  # as the ALiBi reference code (fairseq, BLOOM's baddbmm) writes it: biased scores
            return torch.softmax(torch.baddbmm(bias.expand(H, N, N), q, k.transpose(-1, -2), alpha=d ** -0.5), -1) @ v
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # the fastest PyTorch form
    raise ValueError(name)


def time_torch(name, n, d, h, reps):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(h, n, d, generator=g) for _ in range(3))
    gate = torch.sigmoid(torch.randn(h, n, d if name.startswith("gate_elem") else 1, generator=g))
    with torch.inference_mode():
        torch_variant(name, q, k, v, gate=gate)  # warm-up
        best = []
        for _ in range(reps):
            t0 = time.perf_counter()
            torch_variant(name, q, k, v, gate=gate)
            best.append(time.perf_counter() - t0)
    best.sort()
    return best[len(best) // 2]


def time_torch_decode(length, d, h, kv, reps):
    """One new token against a cache of `length` keys: SDPA with grouped-query K/V (enable_gqa)."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, h, 1, d, generator=g)
    k, v = (torch.randn(1, kv, length, d, generator=g) for _ in range(2))
    with torch.inference_mode():
        F.scaled_dot_product_attention(q, k, v, enable_gqa=kv != h)
        best = []
        for _ in range(reps):
            t0 = time.perf_counter()
            F.scaled_dot_product_attention(q, k, v, enable_gqa=kv != h)
            best.append(time.perf_counter() - t0)
    best.sort()
    return best[len(best) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench/benchmarks/dskit_bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, nargs="+", default=[2048])
    ap.add_argument("--d", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--variants", nargs="+",
                    default=["plain", "causal", "decay_abs", "decay_rel", "alibi", "gate_head", "gate_elem",
                             "concentrated_dense", "block_sparse", "block_sparse_eighth", "topk"])
    ap.add_argument("--decode", type=int, nargs="*", default=[4096, 32768],
                    help="cache lengths for the decode rows (one new token; H query heads, H and 2 K/V heads)")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), DSKIT_BENCH_LARGE="1")

    def dskit_once(key):
        """One dskit_bench run of the benchmark `key` alone: its time in seconds."""
        out = subprocess.run([a.bench, f"--benchmark_filter=^{key}/", "--benchmark_format=json"], env=env,
                             check=True, capture_output=True, text=True).stdout
        if not out.strip():  # no such benchmark (dskit_bench says so on stderr)
            return None
        runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
        if not runs:
            return None
        b = runs[0]
        return b["real_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    def row(label, key, torch_once, digits):
        ts_d, ts_t = [], []
        for _ in range(a.reps):
            t = dskit_once(key)
            if t is None:
                return
            ts_d.append(t)
            ts_t.append(torch_once())
        td, tt = median(ts_d), median(ts_t)
        print(f"| {label} | {td * 1e3:.{digits}f} | {tt * 1e3:.{digits}f} | {tt / td:.2f}x |", flush=True)

    print(f"threads {a.threads}, H {a.heads}, torch {torch.__version__}; medians of {a.reps} alternating rounds")
    print("| variant | N | d | dskit ms | PyTorch ms | PyTorch / dskit |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in a.variants:
        for n in a.n:
            for d in a.d:
                key = f"attention/{name}/simd/N:{n}/d:{d}/H:{a.heads}"
                row(f"{name} | {n} | {d}", key, lambda: time_torch(name, n, d, a.heads, 1), 1)
                if name.startswith("gate_"):  # also against the fastest PyTorch form of the same output
                    row(f"{name} (vs SDPA x gate) | {n} | {d}", key,
                        lambda: time_torch(name + "_sdpa", n, d, a.heads, 1), 1)
                if name == "alibi":
                    row(f"{name} (vs SDPA with the bias as mask) | {n} | {d}", key,
                        lambda: time_torch("alibi_sdpa", n, d, a.heads, 1), 1)
    for length in a.decode:
        for d in a.d:
            for kv in (a.heads, 2):
                key = f"attention/decode/simd/L:{length}/d:{d}/H:{a.heads}/kv:{kv}"
                row(f"decode (1 token, {kv} K/V heads) | L={length} | {d}", key,
                    lambda: time_torch_decode(length, d, a.heads, kv, 5), 3)


if __name__ == "__main__":
    main()
