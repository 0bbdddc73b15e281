#!/usr/bin/env python3
"""Writes tests/fixtures/kernels/*.safetensors: PyTorch results for dskit's kernels.

Inputs are float32; PyTorch computes in float64 and the results are rounded to float32, so the
fixtures hold the correctly rounded answers (PyTorch's own float32 kernels differ from them by a
few ulp). GELU is evaluated in a cancellation-free form that is checked against F.gelu. Tensor names: x_<R>x<C> (input) and <op>_<R>x<C> (output); see each file below.

Run from the repository root:  python3 tests/reference/make_kernel_fixtures.py
"""
import math
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "kernels"
SHAPES = [(1, 1), (3, 17), (17, 40), (5, 1000)]


def f64(t):
    return t.to(torch.float64)


def f32(t):
    return t.to(torch.float32).contiguous()


def gelu_erf(x):
    """F.gelu(x) in float64, written with erfc: PyTorch's 1 + erf(x / sqrt 2) cancels to 0 below x = -8."""
    y = 0.5 * x * torch.special.erfc(-x / math.sqrt(2.0))
    ok = x > -5.0
    assert torch.allclose(y[ok], F.gelu(x)[ok], rtol=1e-9, atol=1e-15)
    return y


def gelu_tanh(x):
    """F.gelu(x, approximate='tanh') in float64, as x sigmoid(2u) (1 + tanh(u) cancels for negative x)."""
    u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
    y = x * torch.sigmoid(2.0 * u)
    ok = x > -3.0
    assert torch.allclose(y[ok], F.gelu(x, approximate="tanh")[ok], rtol=1e-9, atol=1e-15)
    return y


def name(prefix, shape):
    return f"{prefix}_{shape[0]}x{shape[1]}"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(20240601)
    meta = {"generator": "tests/reference/make_kernel_fixtures.py", "torch": torch.__version__}

    # Element-wise activations on inputs spread over [-12, 12] plus a few fixed points.
    t = {}
    for s in SHAPES:
        x = torch.randn(s, generator=g) * 4.0
        x.view(-1)[: min(6, x.numel())] = torch.tensor([0.0, -12.0, 12.0, -0.5, 0.5, 3.0])[: min(6, x.numel())]
        x = f32(x)
        t[name("x", s)] = x
        t[name("exp", s)] = f32(torch.exp(f64(x)))
        t[name("sigmoid", s)] = f32(torch.sigmoid(f64(x)))
        t[name("silu", s)] = f32(F.silu(f64(x)))
        t[name("gelu", s)] = f32(gelu_erf(f64(x)))
        t[name("gelu_tanh", s)] = f32(gelu_tanh(f64(x)))
    save_file(t, OUT / "activation.safetensors", metadata=meta)

    # Row softmax; the 17x40 input has masked (-inf) entries like a causal attention score matrix.
    t = {}
    for s in SHAPES:
        x = torch.randn(s, generator=g) * 3.0
        if s == (17, 40):
            x = x.masked_fill(torch.ones(s, dtype=torch.bool).triu(diagonal=23), float("-inf"))
        x = f32(x)
        t[name("x", s)] = x
        t[name("softmax", s)] = f32(torch.softmax(f64(x), dim=-1))
    save_file(t, OUT / "softmax.safetensors", metadata=meta)

    # Norms: weight and bias per shape (w_<shape>, b_<shape>); eps 1e-6 (RMSNorm) and 1e-5 (LayerNorm).
    t = {}
    for s in SHAPES:
        x = f32(torch.randn(s, generator=g) * 2.0 + 0.5)
        w = f32(torch.randn(s[1], generator=g) * 0.5 + 1.0)
        b = f32(torch.randn(s[1], generator=g) * 0.1)
        t[name("x", s)] = x
        t[name("w", s)] = w
        t[name("b", s)] = b
        t[name("rms_norm", s)] = f32(F.rms_norm(f64(x), (s[1],), weight=f64(w), eps=1e-6))
        t[name("rms_norm_noaffine", s)] = f32(F.rms_norm(f64(x), (s[1],), eps=1e-6))
        t[name("layer_norm", s)] = f32(F.layer_norm(f64(x), (s[1],), weight=f64(w), bias=f64(b), eps=1e-5))
        t[name("layer_norm_noaffine", s)] = f32(F.layer_norm(f64(x), (s[1],), eps=1e-5))
    save_file(t, OUT / "norm.safetensors", metadata=meta)

    # Matrix products: a [M, K], b [N, K]; nt = a b^T, bt_<tag> = b^T, so a @ bt_<tag> = nt_<tag> tests matmul.
    t = {}
    for m, n, k in [(1, 1, 1), (3, 5, 17), (17, 9, 40), (5, 3, 1000)]:
        a = f32(torch.randn(m, k, generator=g))
        b = f32(torch.randn(n, k, generator=g))
        tag = f"{m}x{n}x{k}"
        t[f"a_{tag}"] = a
        t[f"b_{tag}"] = b
        t[f"bt_{tag}"] = b.t().clone().contiguous()
        t[f"nt_{tag}"] = f32(f64(a) @ f64(b).t())
    save_file(t, OUT / "matmul.safetensors", metadata=meta)


if __name__ == "__main__":
    main()
