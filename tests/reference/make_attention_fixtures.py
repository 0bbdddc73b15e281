#!/usr/bin/env python3
"""Writes tests/fixtures/attention/attention.safetensors: PyTorch results for dskit::attention.

Every case is computed in float64 from float32 inputs and rounded to float32. Plain, causal and
masked cases use F.scaled_dot_product_attention; the decays and ALiBi use explicit PyTorch
formulations of SPEC section 1 (each also checked against SDPA with the same additive bias where
one exists). Layout as in dskit: q [N, H*d], k and v [L, Hkv*d], head h = columns [h*d, (h+1)*d),
query head h reads kv head h // (H // Hkv).

Tensors per case <c>: <c>/q, <c>/k, <c>/v, <c>/out, <c>/heads = [H, Hkv], and the modifier's
parameters: <c>/gamma (decays, 1 or H values), <c>/slopes (ALiBi), <c>/length (key length),
<c>/mask (key mask, 0/1).

Run from the repository root:  python3 tests/reference/make_attention_fixtures.py
"""
import math
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "attention"


def split(x, heads):
    """[N, H*d] -> [H, N, d]"""
    n = x.shape[0]
    return x.reshape(n, heads, -1).transpose(0, 1)


def merge(x):
    """[H, N, d] -> [N, H*d]"""
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def expand_kv(x, heads, kv_heads):
    return x.repeat_interleave(heads // kv_heads, dim=0)


def explicit(q, k, v, heads, kv_heads, bias=None, factor=None):
    """softmax((q k^T / sqrt(d)) * factor + bias) v per head, in float64; bias/factor broadcast [H or 1, N, L]."""
    q, k, v = split(q, heads), expand_kv(split(k, kv_heads), heads, kv_heads), expand_kv(split(v, kv_heads), heads, kv_heads)
    s = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
    if factor is not None:
        s = s * factor
    if bias is not None:
        s = s + bias
    return merge(torch.softmax(s, dim=-1) @ v)


def sdpa(q, k, v, heads, kv_heads, mask=None, causal=False):
    q, k, v = split(q, heads), split(k, kv_heads), split(v, kv_heads)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=heads != kv_heads)
    return merge(o)


def positions(n, l):
    i = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(l, dtype=torch.float64)[None, :]
    return i, j


def main():
    gen = torch.Generator().manual_seed(20261122)
    tensors = {}

    def inputs(n, l, heads, kv_heads, d, scale=1.0):
        q = (torch.randn(n, heads * d, generator=gen) * scale).float()
        k = (torch.randn(l, kv_heads * d, generator=gen) * scale).float()
        v = torch.randn(l, kv_heads * d, generator=gen).float()
        return q, k, v

    def add(name, q, k, v, heads, kv_heads, out, **params):
        tensors[f"{name}/q"] = q.contiguous()
        tensors[f"{name}/k"] = k.contiguous()
        tensors[f"{name}/v"] = v.contiguous()
        tensors[f"{name}/out"] = out.float().contiguous()
        tensors[f"{name}/heads"] = torch.tensor([heads, kv_heads], dtype=torch.float32)
        for key, value in params.items():
            tensors[f"{name}/{key}"] = torch.as_tensor(value, dtype=torch.float32).reshape(-1)

    def f64(*xs):
        return [x.double() for x in xs]

    # Plain, causal and masked attention through SDPA, cross-checked against the explicit formula.
    plain_cases = [
        ("plain_n1", 1, 17, 3, 3, 40),
        ("plain", 17, 17, 3, 3, 40),
        ("plain_cross", 17, 33, 2, 2, 16),
        ("plain_gqa", 17, 17, 6, 2, 8),
        ("plain_mqa", 9, 21, 4, 1, 16),
        ("plain_blocks", 130, 150, 2, 1, 8),  # several query and key blocks
    ]
    for name, n, l, h, hkv, d in plain_cases:
        q, k, v = inputs(n, l, h, hkv, d)
        o = sdpa(*f64(q, k, v), h, hkv)
        assert torch.allclose(o, explicit(*f64(q, k, v), h, hkv), atol=1e-12)
        add(name, q, k, v, h, hkv, o)

    for name, n, l, h, hkv, d in [("causal", 17, 17, 3, 3, 40), ("causal_cross", 17, 33, 2, 2, 8),
                                  ("causal_gqa_blocks", 130, 140, 4, 2, 4)]:
        q, k, v = inputs(n, l, h, hkv, d)
        o = sdpa(*f64(q, k, v), h, hkv, causal=True)
        i, j = positions(n, l)
        bias = torch.where(j <= i, 0.0, -math.inf)
        assert torch.allclose(o, explicit(*f64(q, k, v), h, hkv, bias=bias), atol=1e-12)
        add(name, q, k, v, h, hkv, o)

    # Key padding: keys j >= length masked (SDPA boolean mask, True = attend).
    q, k, v = inputs(17, 33, 3, 3, 8)
    keep = torch.arange(33) < 20
    add("key_length", q, k, v, 3, 3, sdpa(*f64(q, k, v), 3, 3, mask=keep[None, None, :].expand(3, 17, 33)), length=20)
    q, k, v = inputs(17, 33, 2, 1, 8)
    keep = torch.rand(33, generator=gen) < 0.6
    keep[0] = True
    add("key_mask", q, k, v, 2, 1, sdpa(*f64(q, k, v), 2, 1, mask=keep[None, None, :].expand(2, 17, 33)),
        mask=keep.float())

    # Time decay, absolute (seed 004 as written): S_ij = (q_i . k_j) gamma^j / sqrt(d).
    for name, n, l, h, hkv, d, gamma in [("decay_abs", 17, 17, 3, 3, 8, 0.95), ("decay_abs_blocks", 130, 150, 2, 1, 8, 0.97)]:
        q, k, v = inputs(n, l, h, hkv, d, scale=2.0)
        _, j = positions(n, l)
        add(name, q, k, v, h, hkv, explicit(*f64(q, k, v), h, hkv, factor=torch.tensor(gamma, dtype=torch.float64) ** j),
            gamma=gamma)

    # Time decay, relative: S_ij = q_i . k_j / sqrt(d) + (i - j) ln gamma_h for j <= i (causal), per-head gamma.
    # dskit's decay_relative alone is the symmetric -|i - j| ln(1/gamma_h); with causal it is SPEC's form.
    for name, n, l, h, hkv, d, gammas, causal in [
        ("decay_rel_causal", 17, 17, 3, 3, 8, [0.9, 0.95, 0.99], True),
        ("decay_rel", 17, 25, 3, 3, 8, [0.8], False),
        ("decay_rel_causal_blocks", 130, 130, 2, 2, 8, [0.99, 0.999], True),
    ]:
        q, k, v = inputs(n, l, h, hkv, d)
        i, j = positions(n, l)
        lg = torch.log(torch.tensor(gammas, dtype=torch.float64))[:, None, None]
        bias = -(i - j).abs() * -lg
        if causal:
            bias = torch.where(j <= i, bias, -math.inf)
            assert torch.allclose(torch.where(j <= i, (i - j) * lg, -math.inf), bias)
        o = explicit(*f64(q, k, v), h, hkv, bias=bias)
        assert torch.allclose(o, sdpa(*f64(q, k, v), h, hkv, mask=bias.expand(h, n, l)), atol=1e-12)
        add(name, q, k, v, h, hkv, o, gamma=gammas)

    # ALiBi: S_ij = q_i . k_j / sqrt(d) - m_h |i - j|, m_h = 2^(-8 k / H); also with causal and GQA.
    for name, n, l, h, hkv, d, causal in [("alibi", 17, 17, 3, 3, 8, False), ("alibi_causal_gqa", 17, 17, 6, 2, 8, True)]:
        q, k, v = inputs(n, l, h, hkv, d)
        i, j = positions(n, l)
        slopes = torch.tensor([2.0 ** (-8.0 * (x + 1) / h) for x in range(h)], dtype=torch.float64)
        bias = -slopes[:, None, None] * (i - j).abs()
        if causal:
            bias = torch.where(j <= i, bias, -math.inf)
        add(name, q, k, v, h, hkv, explicit(*f64(q, k, v), h, hkv, bias=bias), slopes=slopes)

    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT / "attention.safetensors"))
    total = sum(t.numel() * 4 for t in tensors.values())
    print(f"wrote {len(tensors)} tensors, {total} bytes of data")


if __name__ == "__main__":
    main()
