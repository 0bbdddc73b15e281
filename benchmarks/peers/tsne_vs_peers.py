#!/usr/bin/env python3
"""dskit's t-SNE against scikit-learn and openTSNE on the same data, threads and iteration counts.

    python3 benchmarks/peers/tsne_vs_peers.py --dskit-bin build/tsne/examples/tsne_embed --threads 2
    python3 benchmarks/peers/tsne_vs_peers.py --mixture 20000 --dskit-bin ...   # needs make_gaussian_mixture.py
    python3 benchmarks/peers/tsne_vs_peers.py --rounds 5 ...   # tools take turns 5 times; median times

With --rounds R every tool runs R times, taking turns (tool A, tool B, tool A, ...), and the time column
is each tool's median: this machine's speed drifts by 10-30% within minutes, and one run of each tool
let that drift decide ratios near a threshold (digits: 18.5x to 22.2x in six one-round runs).

Every tool runs in its own subprocess (peak RSS measured by /usr/bin/time) with OMP/MKL/OpenBLAS/
Numba threads set to --threads (OMP_WAIT_POLICY left at the runtime's default unless --wait-policy sets it:
passive helps on a machine crowded by other jobs, where spinning threads lose their core, and costs dskit
about 2x on a quiet one: 750 short parallel gradient steps each wake sleeping threads), perplexity 30, PCA
initialisation and 750 iterations (250 with early
exaggeration 12, then 500):

  sklearn   sklearn.manifold.TSNE(method="barnes_hut", angle 0.5, max_iter=750; scikit-learn >= 1.5 calls
            it max_iter, older versions n_iter; its exaggeration phase is fixed at 250 iterations)
  openTSNE  openTSNE.TSNE(negative_gradient_method="fft", n_iter=500, early_exaggeration_iter=250,
            neighbors="exact" up to 20000 points, "annoy" (approximate) above)
  dskit     the tsne_embed example (--method auto unless --dskit-method), timed inside the program

Columns: time = the tool's own fit (kNN, affinities and optimisation; not Python start-up or data
loading); KL (own) = the final KL each tool reports (sklearn: Barnes-Hut estimate; openTSNE: FFT
estimate; dskit: exact for the exact method); KL (common) = exact KL(P || Q) of each final embedding with
one P for all, computed here in numpy (exact kNN with k = 3 perplexity, per-point bisection to the
perplexity, symmetrised, exact Z), only for N <= 5000; trust@10 = sklearn.manifold.trustworthiness
(on a 5000-point random subsample when N > 10000: its memory is O(N^2)); 10-NN acc = leave-one-out 10-NN
accuracy in the embedding with ties going to the smallest label, as dskit::knn_accuracy computes it.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
PERPLEXITY = 30.0
EARLY, LATE = 250, 500


# ---------------------------------------------------------------- workers (run in their own process)

def worker(tool, data, out, threads, seed):
    x = np.load(data).astype(np.float32)
    if tool == "sklearn":
        import sklearn
        from sklearn.manifold import TSNE

        major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
        iters = {"max_iter" if (major, minor) >= (1, 5) else "n_iter": EARLY + LATE}
        t0 = time.perf_counter()
        m = TSNE(n_components=2, perplexity=PERPLEXITY, method="barnes_hut", angle=0.5, init="pca",
                 learning_rate="auto", early_exaggeration=12.0, n_jobs=threads, random_state=seed, **iters)
        y = m.fit_transform(x)
        seconds = time.perf_counter() - t0
        kl, info = float(m.kl_divergence_), f"scikit-learn {sklearn.__version__}, Barnes-Hut"
    elif tool == "opentsne":
        import openTSNE

        neighbors = "exact" if x.shape[0] <= 20000 else "annoy"
        t0 = time.perf_counter()
        emb = openTSNE.TSNE(n_components=2, perplexity=PERPLEXITY, n_iter=LATE, early_exaggeration_iter=EARLY,
                            early_exaggeration=12.0, negative_gradient_method="fft", neighbors=neighbors,
                            initialization="pca", n_jobs=threads, random_state=seed).fit(x)
        seconds = time.perf_counter() - t0
        y = np.asarray(emb)
        kl, info = float(emb.kl_divergence), f"openTSNE {openTSNE.__version__}, FFT, {neighbors} kNN"
    else:
        raise SystemExit(f"unknown tool {tool}")
    np.save(out, y.astype(np.float64))
    print(json.dumps({"seconds": seconds, "kl": kl, "info": info}))


def run_child(cmd, env):
    """Runs cmd; returns (output, peak RSS in MiB of that process alone).

    Linux carries a process's peak RSS across fork and exec, so a child forked from this (large) Python
    process would report at least this process's RSS; /usr/bin/time (small) forks the tool instead and
    reports its peak (GNU time's %M, in KiB) on the last line of its output."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss_file:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *map(str, cmd)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{text}")
        rss_kib = float(pathlib.Path(rss_file.name).read_text().split()[-1])
    return text, rss_kib / 1024.0


# ---------------------------------------------------------------- common measures

def knn(x, k):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x)
    d, idx = nn.kneighbors(x)
    out_i = np.empty((x.shape[0], k), np.int64)
    out_d = np.empty((x.shape[0], k))
    for i in range(x.shape[0]):  # drop the point itself (wherever ties put it)
        keep = idx[i] != i
        if keep.all():
            keep[-1] = False
        out_i[i], out_d[i] = idx[i][keep][:k], d[i][keep][:k]
    return out_i, out_d


def joint_p(x, perplexity):
    """Symmetric sparse P as (rows, cols, values): dskit's / openTSNE's calibration, in numpy."""
    n = x.shape[0]
    k = min(n - 1, int(3 * perplexity))
    idx, dist = knn(x.astype(np.float64), k)
    d2 = dist ** 2
    d2 -= d2[:, :1]
    target = np.log(perplexity)
    beta, lo, hi = np.ones(n), np.zeros(n), np.full(n, np.inf)
    for _ in range(200):
        w = np.exp(-beta[:, None] * d2)
        s = w.sum(1)
        h = np.log(s) + beta * (d2 * w).sum(1) / s
        if np.all(np.abs(h - target) <= 1e-5):
            break
        up = h > target
        lo = np.where(up, beta, lo)
        hi = np.where(up, hi, beta)
        beta = np.where(up, np.where(np.isinf(hi), beta * 2, (beta + hi) / 2), (beta + lo) / 2)
    w = np.exp(-beta[:, None] * d2)
    cond = w / w.sum(1, keepdims=True)
    from scipy.sparse import csr_matrix

    c = csr_matrix((cond.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    p = ((c + c.T) / (2.0 * n)).tocoo()
    return p.row, p.col, p.data


def exact_kl(p, y):
    rows, cols, vals = p
    y = y.astype(np.float64)
    z = 0.0
    for s in range(0, y.shape[0], 1024):  # Z = sum_{i != j} 1 / (1 + |y_i - y_j|^2), in blocks
        d2 = ((y[s:s + 1024, None, :] - y[None, :, :]) ** 2).sum(-1)
        z += (1.0 / (1.0 + d2)).sum() - min(1024, y.shape[0] - s)
    d2 = ((y[rows] - y[cols]) ** 2).sum(1)
    return float(np.sum(vals * np.log(vals)) + np.sum(vals * np.log1p(d2)) + np.log(z))


def knn_accuracy(y, labels, k=10):
    idx, _ = knn(y, k)
    votes = labels[idx]
    pred = np.array([np.bincount(v).argmax() for v in votes])  # argmax: the smallest label on ties
    return float(np.mean(pred == labels))


def trust(x, y, rng):
    from sklearn.manifold import trustworthiness

    if x.shape[0] > 10000:
        s = rng.choice(x.shape[0], 5000, replace=False)
        return float(trustworthiness(x[s], y[s], n_neighbors=10)), "subsample 5000"
    return float(trustworthiness(x, y, n_neighbors=10)), ""


# ---------------------------------------------------------------- driver

def load_dataset(args, tmp):
    if args.mixture:
        base = args.data_dir / f"gauss_mix_{args.mixture}"
        if not base.with_suffix(".npy").exists():
            subprocess.run([sys.executable, str(ROOT / "benchmarks/peers/make_gaussian_mixture.py"), "--n",
                            str(args.mixture), "--out", str(args.data_dir)], check=True)
        x = np.load(base.with_suffix(".npy"))
        labels = np.load(str(base) + "_labels.npy")
        name = f"Gaussian mixture, {x.shape[0]} x {x.shape[1]}, 10 clusters"
    else:
        x = np.loadtxt(args.data, delimiter=",", dtype=np.float32)
        labels = np.loadtxt(args.labels, dtype=np.int64)
        name = f"digits, {x.shape[0]} x {x.shape[1]}"
    path = pathlib.Path(tmp) / "x.npy"
    np.save(path, x.astype(np.float32))
    return x, labels, path, name


def run_tool(tool, args, xpath, tmp, env):
    """One fit of one tool in its own process: (result dict, embedding, peak RSS in MiB)."""
    out = pathlib.Path(tmp) / f"{tool}.npy"
    if tool == "dskit":
        csv = pathlib.Path(tmp) / "dskit.csv"
        text, rss = run_child([str(args.dskit_bin), str(xpath), str(csv), "--perplexity", str(PERPLEXITY),
                               "--threads", str(args.threads), "--seed", str(args.seed), "--method",
                               args.dskit_method, "--quality", "0"], env)
        m = re.search(r"done: (\d+) iterations, KL ([-\d.]+), ([\d.]+) s \(([^)]*)\)", text)
        if not m:
            raise RuntimeError(f"unexpected tsne_embed output:\n{text}")
        y = np.loadtxt(csv, delimiter=",")
        return {"seconds": float(m.group(3)), "kl": float(m.group(2)), "info": f"dskit, {m.group(4)}"}, y, rss
    text, rss = run_child([sys.executable, __file__, "--threads", str(args.threads), "--seed", str(args.seed),
                           "--worker", tool, str(xpath), str(out)], env)
    return json.loads(text.strip().splitlines()[-1]), np.load(out), rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=pathlib.Path, default=ROOT / "examples/data/digits.csv")
    ap.add_argument("--labels", type=pathlib.Path, default=ROOT / "examples/data/digits_labels.csv")
    ap.add_argument("--mixture", type=int, default=0, help="use the N-point Gaussian mixture instead")
    ap.add_argument("--data-dir", type=pathlib.Path, default=ROOT / "build" / "data")
    ap.add_argument("--dskit-bin", type=pathlib.Path, default=ROOT / "build/showcase/examples/tsne_embed")
    ap.add_argument("--dskit-method", default="auto", choices=["auto", "exact", "bh", "fft"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tools", default="sklearn,opentsne,dskit")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every tool this many times, taking turns; times are medians over the rounds")
    ap.add_argument("--wait-policy", default="default", choices=["passive", "active", "default"],
                    help="OMP_WAIT_POLICY for every tool (passive: idle OpenMP threads sleep instead of spinning, "
                         "which matters on a machine shared with other work)")
    ap.add_argument("--worker", nargs=3, metavar=("TOOL", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.worker[2], args.threads, args.seed)
        return

    env = dict(os.environ)
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[v] = str(args.threads)
    if args.wait_policy != "default":
        env["OMP_WAIT_POLICY"] = args.wait_policy.upper()
    rng = np.random.default_rng(0)
    rows = []
    tools = args.tools.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        x, labels, xpath, name = load_dataset(args, tmp)
        n = x.shape[0]
        p = joint_p(x, PERPLEXITY) if n <= 5000 else None
        # Rounds: every tool once per round, in turn, so that the machine's drift reaches all of them alike;
        # the table reports each tool's median time (quality and memory from its last round: the runs are
        # seeded, so every round computes the same embedding).
        times = {tool: [] for tool in tools}
        last = {}
        for rnd in range(args.rounds):
            for tool in tools:
                res, y, rss = run_tool(tool, args, xpath, tmp, env)
                times[tool].append(res["seconds"])
                last[tool] = (res, y, rss)
                print(f"  round {rnd + 1}: {res['info']}: {res['seconds']:.3f} s", file=sys.stderr, flush=True)
        for tool in tools:
            res, y, rss = last[tool]
            t, note = trust(x, y, rng)
            rows.append({"method": res["info"], "time": float(np.median(times[tool])), "times": times[tool],
                         "kl": res["kl"], "kl_common": exact_kl(p, y) if p is not None else float("nan"),
                         "trust": t, "trust_note": note, "acc": knn_accuracy(y, labels), "rss": rss})

    print(f"\n{name}; perplexity {PERPLEXITY:g}, {EARLY} + {LATE} iterations, {args.threads} threads, "
          f"OMP_WAIT_POLICY {args.wait_policy}, {args.rounds} round(s) (time: median)\n")
    head = f"| {'method':44} | time (s) | KL (own) | KL (common) | trust@10 | 10-NN acc | peak RSS (MiB) |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        kc = f"{r['kl_common']:.4f}" if r["kl_common"] == r["kl_common"] else "n/a"
        tr = f"{r['trust']:.4f}" + ("*" if r["trust_note"] else "")
        print(f"| {r['method']:44} | {r['time']:8.3f} | {r['kl']:8.4f} | {kc:>11} | {tr:>8} | {r['acc']:9.4f} "
              f"| {r['rss']:14.0f} |")
    ours = [r for r in rows if r["method"].startswith("dskit")]
    if ours:
        for r in rows:
            if r is not ours[0]:
                print(f"\n{r['method']} / {ours[0]['method']}: time {r['time'] / ours[0]['time']:.2f}x, "
                      f"KL (own) {100 * (ours[0]['kl'] / r['kl'] - 1):+.2f}%", end="")
        print()
    if args.rounds > 1:
        for r in rows:
            print(f"{r['method']}: " + ", ".join(f"{t:.3f}" for t in r["times"]) + " s")
    if any(r["trust_note"] for r in rows):
        print("\n* trustworthiness on a random 5000-point subsample (the full computation is O(N^2) in memory)")
    if p is None:
        print("KL (common) needs the exact O(N^2) Z: computed for N <= 5000 only; compare KL (own) with care.")


if __name__ == "__main__":
    main()
