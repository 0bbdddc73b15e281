#!/usr/bin/env python3
"""Writes the fixtures of dskit's gated attention (tests/attention/test_gates.cpp):

tests/fixtures/attention/gated_kernel.safetensors: the gated attention kernel on raw inputs.
    Per case <c>: <c>/q [N, H*d], <c>/k, <c>/v [L, Hkv*d], <c>/gate ([N, H] for "head_*" cases,
    [N, H*d] for "elem_*"), <c>/out, <c>/heads = [H, Hkv], <c>/causal = [0 or 1].
tests/fixtures/attention/gated_modules.safetensors: the three modules of seeds 000-002, as the
    PyTorch classes below (the articles' sketches with their bugs fixed), randomly initialised.
    Per case <c> (the name starts with gau_, dynattn_ or dyngate_): the module's state_dict under
    "<c>." (e.g. "gau_n17.to_qkv.weight"), the input <c>/x [N, D], the output <c>/out, and
    <c>/config = [heads, causal] (dyngate: [0, 0]). Cross-attention cases also have <c>/key and
    <c>/value (the module's forward(x, key, value)).

Every output is computed in float64 from the float32 inputs and weights, and rounded to float32.
Layout as in dskit: head h of a [N, H*d] matrix is columns [h*d, (h+1)*d); one sequence, no batch.

Run from the repository root:  python3 tests/reference/make_attention_module_fixtures_gated.py
"""
import math
import pathlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "attention"


# ---------------------------------------------------------------------------------------------
# Seed 000: GatedAttentionUnit. Fixed here (SPEC section 1):
#  - the article's einsum('bhd,bhd->bhb', q, k) is not an attention product (it contracts d per
#    position and has no query/key axes); the scores are einsum('bhid,bhjd->bhij');
#  - likewise the values: einsum('bhij,bhjd->bhid', attn, v);
#  - the gate: the article writes sigmoid(self.gate(x).unsqueeze(1)) "[B,1,H]", which is really
#    [B,1,N,H] and does not broadcast against out [B,H,N,d]. The gate is per token and head,
#    g = sigmoid(x W_g^T + b_g) in [B,N,H], applied as g.transpose(1,2)[..., None] ([B,H,N,1]);
#  - view(*t.shape[:-1], heads, -1) then transpose(1, 2) is right for a batched [B,N,D] input;
#    the final reshape(*x.shape) too. The article has no output projection; neither has this.
#  - optional causal mask (not in the article; dskit's module takes any score modifier).
# ---------------------------------------------------------------------------------------------
class GatedAttentionUnit(nn.Module):
    def __init__(self, dim, heads=8, causal=False):
        super().__init__()
        self.scale = (dim // heads) ** -0.5
        self.heads = heads
        self.causal = causal
        self.to_qkv = nn.Linear(dim, dim * 3)
        self.gate = nn.Linear(dim, heads)  # gate network: one logit per head and token

    def forward(self, x):  # x: [B, N, D]
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))  # [B, H, N, d]
        dots = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
        if self.causal:
            dots = dots.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -math.inf)
        attn = dots.softmax(dim=-1)
        out = torch.einsum("bhij,bhjd->bhid", attn, v)
        gate = torch.sigmoid(self.gate(x)).transpose(1, 2).unsqueeze(-1)  # [B, H, N, 1]
        out = out * gate
        return out.transpose(1, 2).reshape(*x.shape)


# ---------------------------------------------------------------------------------------------
# Seed 001: DynamicAttention. The article's code is right as PyTorch (its line breaks were lost
# in the page); fixed / made explicit here:
#  - need_weights=False: the article discards the averaged attention weights, which PyTorch would
#    otherwise compute and average over heads for nothing;
#  - the input is one unbatched sequence [N, D] (nn.MultiheadAttention's default batch_first=False
#    would read a [B, N, D] tensor as [N, B, D]; unbatched input sidesteps that);
#  - optional causal mask (attn_mask, True = not allowed), not in the article.
# The gate multiplies the output *after* out_proj, element-wise: O = out_proj(MHA) * sigmoid(q W_g^T + b_g).
# ---------------------------------------------------------------------------------------------
class DynamicAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, causal=False):
        super().__init__()
        self.attention = nn.MultiheadAttention(embed_dim, num_heads)
        self.gate = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.Sigmoid())
        self.causal = causal

    def forward(self, query, key, value):
        mask = None
        if self.causal:
            mask = torch.ones(query.shape[0], key.shape[0], dtype=torch.bool).triu(1)
        attn_output, _ = self.attention(query, key, value, need_weights=False, attn_mask=mask)
        gate_weights = self.gate(query)  # in (0, 1)
        return attn_output * gate_weights


# ---------------------------------------------------------------------------------------------
# Seed 002: DynamicGate. Fixed here: the article returns x * gate_value with x [B, N, D] and
# gate_value [B, 1]; broadcasting aligns [B, 1] with the trailing [N, D], so it fails unless
# B == N or B == 1, and when B == N it silently gates token i by sequence i's value. The scalar
# of each sequence must broadcast over its tokens and features: gate_value[:, :, None] ([B, 1, 1]).
# ---------------------------------------------------------------------------------------------
class DynamicGate(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(dim, dim // 4),
            nn.SiLU(),
            nn.Linear(dim // 4, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):  # x: [B, N, D]
        gate_value = self.gate(x.mean(dim=1))  # mean over the sequence: [B, 1]
        return x * gate_value[:, :, None]


def randomise(module, gen, dim):
    """Every parameter ~ N(0, 1/dim) (weights) or N(0, 0.2^2) (biases): PyTorch's MHA starts with zero
    biases, which would leave the bias paths untested."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            std = 0.2 if name.endswith("bias") else 1.0 / math.sqrt(dim)
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def main():
    gen = torch.Generator().manual_seed(20261122)
    kernel, modules = {}, {}

    # Raw gated kernel: out = gate * softmax(q k^T / sqrt(d) [+ causal mask]) v, head h of q reads kv
    # head h // (H // Hkv); the head gate scales head h of row i by gate[i, h], the element gate scales
    # out[i, c] by gate[i, c].
    def gated(q, k, v, gate, heads, kv_heads, causal):
        n, l, d = q.shape[0], k.shape[0], q.shape[1] // heads
        qh = q.reshape(n, heads, d).transpose(0, 1)
        kh = k.reshape(l, kv_heads, d).transpose(0, 1).repeat_interleave(heads // kv_heads, dim=0)
        vh = v.reshape(l, kv_heads, d).transpose(0, 1).repeat_interleave(heads // kv_heads, dim=0)
        o = F.scaled_dot_product_attention(qh, kh, vh, is_causal=causal)  # [H, N, d]
        o = o.transpose(0, 1)  # [N, H, d]
        if gate.shape[1] == heads:
            o = o * gate[:, :, None]
        else:
            o = o * gate.reshape(n, heads, d)
        return o.reshape(n, heads * d)

    for name, n, l, h, hkv, d, causal in [
        ("head_n1", 1, 17, 3, 3, 40, False),
        ("head_n17_d40", 17, 17, 3, 3, 40, False),
        ("head_causal_gqa", 17, 17, 6, 2, 8, True),
        ("head_causal_blocks", 130, 130, 2, 1, 8, True),  # several query and key blocks
        ("elem_n1", 1, 9, 3, 3, 40, False),
        ("elem_n17_d40", 17, 17, 3, 3, 40, True),
        ("elem_cross_gqa", 17, 33, 4, 2, 8, False),
        ("elem_causal_blocks", 140, 140, 1, 1, 8, True),
    ]:
        q = torch.randn(n, h * d, generator=gen)
        k = torch.randn(l, hkv * d, generator=gen)
        v = torch.randn(l, hkv * d, generator=gen)
        gate = torch.rand(n, h if name.startswith("head") else h * d, generator=gen)
        out = gated(q.double(), k.double(), v.double(), gate.double(), h, hkv, causal)
        kernel.update({f"{name}/q": q, f"{name}/k": k, f"{name}/v": v, f"{name}/gate": gate,
                       f"{name}/out": out.float(), f"{name}/heads": torch.tensor([h, hkv], dtype=torch.float32),
                       f"{name}/causal": torch.tensor([1.0 if causal else 0.0])})

    def add_module(case, module, x, heads, causal, forward):
        for key, value in module.state_dict().items():
            modules[f"{case}.{key}"] = value.detach().float().contiguous()
        with torch.no_grad():
            out = forward(module.double().eval(), x.double())
        modules[f"{case}/x"] = x
        modules[f"{case}/out"] = out.float().contiguous()
        modules[f"{case}/config"] = torch.tensor([heads, 1.0 if causal else 0.0])

    # GatedAttentionUnit: D = H * d.
    for case, n, dim, heads, causal in [
        ("gau_n1", 1, 24, 3, False),
        ("gau_n17_d40", 17, 40, 1, False),
        ("gau_n17_h3", 17, 36, 3, False),
        ("gau_causal_blocks", 70, 16, 2, True),
    ]:
        m = GatedAttentionUnit(dim, heads, causal)
        randomise(m, gen, dim)
        x = torch.randn(n, dim, generator=gen)
        add_module(case, m, x, heads, causal, lambda mod, xx: mod(xx[None])[0])

    # DynamicAttention on self-attention (query = key = value = x), like dskit's forward(x).
    for case, n, dim, heads, causal in [
        ("dynattn_n1", 1, 24, 3, False),
        ("dynattn_n17_h3", 17, 30, 3, False),
        ("dynattn_n17_d40", 17, 40, 1, False),
        ("dynattn_causal_blocks", 70, 16, 2, True),
    ]:
        m = DynamicAttention(dim, heads, causal)
        randomise(m, gen, dim)
        x = torch.randn(n, dim, generator=gen)
        add_module(case, m, x, heads, causal, lambda mod, xx: mod(xx, xx, xx))
        # Cross-check nn.MultiheadAttention against its formula: packed in_proj, SDPA per head, out_proj.
        with torch.no_grad():
            xd = x.double()
            sd = {k: v.double() for k, v in m.state_dict().items()}
            q, k, v = F.linear(xd, sd["attention.in_proj_weight"], sd["attention.in_proj_bias"]).chunk(3, dim=-1)
            split = lambda t: t.reshape(n, heads, -1).transpose(0, 1)
            a = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=causal)
            a = F.linear(a.transpose(0, 1).reshape(n, dim), sd["attention.out_proj.weight"], sd["attention.out_proj.bias"])
            ref = a * torch.sigmoid(F.linear(xd, sd["gate.0.weight"], sd["gate.0.bias"]))
            assert torch.allclose(ref.float(), modules[f"{case}/out"], rtol=1e-6, atol=1e-6), case

    # DynamicAttention as cross-attention: query [N, D], key and value [L, D] (<c>/key, <c>/value).
    m = DynamicAttention(16, 2)
    randomise(m, gen, 16)
    x, key, value = (torch.randn(n, 16, generator=gen) for n in (17, 23, 23))
    add_module("dynattn_cross", m, x, 2, False, lambda mod, xx: mod(xx, key.double(), value.double()))
    modules["dynattn_cross/key"], modules["dynattn_cross/value"] = key, value

    # DynamicGate: D // 4 hidden units; inputs with a non-zero mean so the gate is not ~sigmoid(b2).
    for case, n, dim in [("dyngate_n1", 1, 16), ("dyngate_n17", 17, 42), ("dyngate_n40", 40, 32)]:
        m = DynamicGate(dim)
        randomise(m, gen, dim)
        x = torch.randn(n, dim, generator=gen) + torch.randn(1, dim, generator=gen)
        add_module(case, m, x, 0, False, lambda mod, xx: mod(xx[None])[0])

    OUT.mkdir(parents=True, exist_ok=True)
    for fname, tensors in [("gated_kernel.safetensors", kernel), ("gated_modules.safetensors", modules)]:
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        save_file(tensors, str(OUT / fname))
        size = (OUT / fname).stat().st_size
        print(f"{fname}: {len(tensors)} tensors, {size} bytes")
        assert size < 200_000, "keep fixtures small"


if __name__ == "__main__":
    main()
