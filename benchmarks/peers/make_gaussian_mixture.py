#!/usr/bin/env python3
"""Seeded Gaussian-mixture data for t-SNE benchmarks: N points in 50-D from 10 clusters.

    python3 benchmarks/peers/make_gaussian_mixture.py                 # N = 20000 and 100000
    python3 benchmarks/peers/make_gaussian_mixture.py --n 5000 --out /tmp/gm

Writes OUT/gauss_mix_<N>.npy (float32, [N, 50]) and OUT/gauss_mix_<N>_labels.npy (int64, [N]) into
build/data/ by default (git-ignored: the data is never committed). Cluster centres are drawn with
standard deviation `--spread` (default 3) per coordinate, points around them with standard deviation 1,
so clusters overlap a little in a few coordinates but are well separated overall; cluster sizes are
unequal (Dirichlet weights, alpha 5) so that the map has large and small groups. The same seed gives the
same files on every machine (numpy's PCG64 generator).
"""
import argparse
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def mixture(n, dims=50, clusters=10, spread=3.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, spread, size=(clusters, dims))
    weights = rng.dirichlet(np.full(clusters, 5.0))
    labels = rng.choice(clusters, size=n, p=weights).astype(np.int64)
    x = centres[labels] + rng.normal(0.0, 1.0, size=(n, dims))
    return x.astype(np.float32), labels


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[20000, 100000], help="numbers of points")
    ap.add_argument("--dims", type=int, default=50)
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--spread", type=float, default=3.0, help="standard deviation of the cluster centres")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "build" / "data")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for n in args.n:
        x, labels = mixture(n, args.dims, args.clusters, args.spread, args.seed)
        np.save(args.out / f"gauss_mix_{n}.npy", x)
        np.save(args.out / f"gauss_mix_{n}_labels.npy", labels)
        print(f"{args.out}/gauss_mix_{n}.npy: {x.shape[0]} x {x.shape[1]}, {args.clusters} clusters, "
              f"sizes {np.bincount(labels, minlength=args.clusters).tolist()}")


if __name__ == "__main__":
    main()
