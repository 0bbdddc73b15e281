"""Fixtures for tests/manifold (t-SNE) from scikit-learn, and the digits data set for examples/data.

Run from the repository root: python tests/reference/make_tsne_fixtures.py
Writes tests/fixtures/manifold/*.npy (small) and examples/data/digits*.csv.
"""
import os

import numpy as np
import sklearn
from scipy.spatial.distance import squareform
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness
from sklearn.manifold._t_sne import _joint_probabilities_nn, _kl_divergence
from sklearn.neighbors import NearestNeighbors

root = os.path.join(os.path.dirname(__file__), "..", "..")
out = os.path.join(root, "tests", "fixtures", "manifold")
os.makedirs(out, exist_ok=True)

rng = np.random.default_rng(2024)
n, d, perplexity = 150, 10, 10.0
k = min(n - 1, int(3 * perplexity))  # openTSNE's neighbour count, which dskit uses

# Clustered data so that neighbourhoods mean something; float32 values, computed on in float64.
centres = rng.normal(0, 4, size=(5, d))
x = (centres[rng.integers(0, 5, n)] + rng.normal(0, 1, size=(n, d))).astype(np.float32)
x64 = x.astype(np.float64)

nn = NearestNeighbors(n_neighbors=k).fit(x64)
graph = nn.kneighbors_graph(mode="distance")
graph.data **= 2  # squared distances, as sklearn's TSNE passes them
p = _joint_probabilities_nn(graph, perplexity, verbose=0).toarray()

y = rng.normal(0, 1, size=(n, 2)).astype(np.float32).astype(np.float64)
kl, grad = _kl_divergence(y.ravel(), squareform(p, checks=False), 1, n, 2, compute_error=True)
grad = grad.reshape(n, 2)

# An embedding worth measuring: the first two principal axes plus noise.
xc = x64 - x64.mean(0)
_, _, vt = np.linalg.svd(xc, full_matrices=False)
y_pca = (xc @ vt[:2].T + rng.normal(0, 0.5, size=(n, 2))).astype(np.float32)
trust = np.array([trustworthiness(x64, y_pca.astype(np.float64), n_neighbors=kk) for kk in (5, 10, 20)])

np.save(os.path.join(out, "x.npy"), x)
np.save(os.path.join(out, "p.npy"), p.astype(np.float32))
np.save(os.path.join(out, "y.npy"), y)
np.save(os.path.join(out, "grad.npy"), grad)
np.save(os.path.join(out, "kl.npy"), np.array([[kl]]))
np.save(os.path.join(out, "y_pca.npy"), y_pca)
np.save(os.path.join(out, "trust.npy"), trust[None, :])
print("sklearn", sklearn.__version__, "kl", kl, "trust@5,10,20", trust, "P nnz", (p > 0).sum())

# The 8x8 digits (scikit-learn's bundled copy of the UCI optdigits test set).
digits = load_digits()
data_dir = os.path.join(root, "examples", "data")
os.makedirs(data_dir, exist_ok=True)
np.savetxt(os.path.join(data_dir, "digits.csv"), digits.data.astype(np.int64), fmt="%d", delimiter=",")
np.savetxt(os.path.join(data_dir, "digits_labels.csv"), digits.target.astype(np.int64), fmt="%d")
