#!/usr/bin/env python3
"""Writes tests/fixtures/attention/modules_mha.safetensors and modules_mha_e120.safetensors (the E = 120
model alone, to keep each file under 200 KB): PyTorch references for dskit::multi_head_attention,
dskit::cross_modal_attention and dskit::attention_weights.

Parameters are rounded to float16 and stored as F16 (half the bytes; the references use exactly
these values). Modules run in float64 on float32 inputs; outputs are rounded to float32. One
sequence per case (dskit's layout): PyTorch gets a batch of one.

multi_head_attention: a model <m> (e40, e120, e24, e24nb = no bias, e16) is one state_dict of
torch.nn.MultiheadAttention(E, H, bias=..., batch_first=True), shared by its cases <m>/<c>
(the head count H does not change the parameters' shapes):
  <m>.model.in_proj_weight [3E, E], <m>.model.in_proj_bias [3E], <m>.model.out_proj.weight [E, E],
  <m>.model.out_proj.bias [E]          (bias=False: no bias tensors)
  <m>/<c>/query [Nq, E], <m>/<c>/key [Nk, E], <m>/<c>/value [Nk, E]
                          self-attention cases store only query (key = value = query), key = value
                          cases no value
  <m>/<c>/out             attn_output [Nq, E]
  <m>/<c>/weights         attn_output_weights (need_weights=True, average_attn_weights=False) as
                          [H * Nq, Nk]: head h is rows [h Nq, (h + 1) Nq); absent for some cases
  <m>/<c>/heads           [H]
  <m>/<c>/causal          [1] if attn_mask is the causal mask (query i sees keys j <= i), else [0]
  <m>/<c>/keep            [Nk] key keep-mask (1 = attend; PyTorch gets key_padding_mask = keep == 0), or absent

cross_modal_attention, case <c>: the article's (seed 004) CrossModalAttention, written to run:
  <c>.model.text_proj.weight [Dv, Dt], .bias [Dv], <c>.model.vision_proj.weight [Dt, Dv], .bias [Dt]
  <c>/text [Nt, Dt], <c>/vision [Nv, Dv]
  <c>/cross_text  [Nt, Nv] = (T W_t^T + b_t) V^T       the article's forward(), as written
  <c>/cross_vision [Nv, Nt] = (V W_v^T + b_v) T^T       (both absent for the large case)
  <c>/text_out [Nt, Dv], <c>/vision_out [Nv, Dt]       attended outputs with <c>/heads = [H] heads:
      head h of text_out   = softmax(Tp_h V_h^T / sqrt(Dv / H)) V_h,  Tp = T W_t^T + b_t, columns split in H blocks
      head h of vision_out = softmax(Vp_h T_h^T / sqrt(Dt / H)) T_h,  Vp = V W_v^T + b_v
      (H = 1: SPEC section 1's O_t = softmax(A_tv / sqrt(Dv)) V and O_v = softmax(A_vt / sqrt(Dt)) T)

Run from the repository root:  python3 tests/reference/make_attention_module_fixtures_mha.py
"""
import math
import pathlib

import torch
import torch.nn as nn
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "attention"


class CrossModalAttention(nn.Module):
    """Seed 004's module. The article's code is one line with its newlines lost, and its forward()
    returns only the raw affinities; attend() adds the attended outputs (SPEC section 1)."""

    def __init__(self, text_dim, vision_dim):
        super().__init__()
        self.text_proj = nn.Linear(text_dim, vision_dim)
        self.vision_proj = nn.Linear(vision_dim, text_dim)

    def forward(self, text_features, vision_features):
        # text -> vision and vision -> text affinities, [B, Nt, Nv] and [B, Nv, Nt]
        cross_text = torch.bmm(self.text_proj(text_features), vision_features.transpose(1, 2))
        cross_vision = torch.bmm(self.vision_proj(vision_features), text_features.transpose(1, 2))
        return cross_text, cross_vision

    def attend(self, text_features, vision_features, heads=1):
        def mh(q, kv):
            b, n, dim = q.shape
            d = dim // heads
            qh = q.reshape(b, n, heads, d).transpose(1, 2)
            kh = kv.reshape(b, kv.shape[1], heads, d).transpose(1, 2)
            w = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(d), dim=-1)
            return (w @ kh).transpose(1, 2).reshape(b, n, dim)

        return (mh(self.text_proj(text_features), vision_features),
                mh(self.vision_proj(vision_features), text_features))


def main():
    torch.manual_seed(20261122)
    gen = torch.Generator().manual_seed(20261123)
    files = {"modules_mha": {}, "modules_mha_e120": {}}

    def randn(*shape):
        return torch.randn(*shape, generator=gen).float()

    def add_state(tensors, prefix, module):
        # F16-representable parameters, stored as F16: half the bytes, and the reference uses exactly them.
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(p.half().float())
        for k, v in module.state_dict().items():
            tensors[f"{prefix}.model.{k}"] = v.detach().half().contiguous()

    # Shared state dicts: (model, E, bias, file)
    models = {}
    for model, e, bias, file in [("e40", 40, True, "modules_mha"), ("e120", 120, True, "modules_mha_e120"),
                                 ("e24", 24, True, "modules_mha"), ("e24nb", 24, False, "modules_mha"),
                                 ("e16", 16, True, "modules_mha")]:
        m = nn.MultiheadAttention(e, 1, bias=bias, batch_first=True)
        if bias:  # PyTorch zero-initialises the biases: make them count
            with torch.no_grad():
                m.in_proj_bias.copy_(0.1 * randn(3 * e))
                m.out_proj.bias.copy_(0.1 * randn(e))
        add_state(files[file], model, m)
        models[model] = (m.state_dict(), e, bias, file)

    # (model, case, H, Nq, Nk, kind, causal, padding, store_weights)
    # kind: self (q = k = v), kv (k = v != q), qkv (all different)
    mha_cases = [
        ("e40", "h4_n1", 4, 1, 1, "self", False, False, True),
        ("e40", "h1_n17", 1, 17, 17, "self", False, False, True),
        ("e40", "h2_n17", 2, 17, 17, "self", False, False, False),
        ("e40", "h4_n17", 4, 17, 17, "self", False, False, True),
        ("e40", "h5_n17", 5, 17, 17, "self", False, False, True),
        ("e40", "h4_causal", 4, 17, 17, "self", True, False, True),
        ("e40", "h2_padding", 2, 17, 17, "self", False, True, True),
        ("e40", "h5_causal_padding", 5, 13, 13, "self", True, True, True),
        ("e40", "h4_cross", 4, 9, 23, "kv", False, False, True),
        ("e40", "h2_cross_qkv", 2, 5, 12, "qkv", False, True, True),
        ("e120", "h3_n17", 3, 17, 17, "self", False, False, True),
        ("e24", "h3_cross_causal", 3, 11, 7, "qkv", True, False, True),
        ("e24nb", "h3_n8", 3, 8, 8, "self", False, False, True),
        ("e16", "h2_blocks", 2, 130, 130, "self", True, False, False),  # several kernel blocks
    ]
    for model, case, h, nq, nk, kind, causal, padding, store_weights in mha_cases:
        state, e, bias, file = models[model]
        tensors = files[file]
        name = f"{model}/{case}"
        m = nn.MultiheadAttention(e, h, bias=bias, batch_first=True)
        m.load_state_dict(state)
        query = randn(nq, e)
        key = query if kind == "self" else randn(nk, e)
        value = key if kind != "qkv" else randn(nk, e)
        attn_mask = None
        if causal:
            attn_mask = torch.arange(nk)[None, :] > torch.arange(nq)[:, None]  # True = masked
        kpm = None
        if padding:
            keep = torch.rand(nk, generator=gen) < 0.6
            keep[0] = True  # every query keeps key 0: no fully masked row (PyTorch gives NaN there)
            kpm = (~keep)[None, :]
            tensors[f"{name}/keep"] = keep.float()
        md = m.double()
        with torch.no_grad():
            out, w = md(query.double()[None], key.double()[None], value.double()[None], attn_mask=attn_mask,
                        key_padding_mask=kpm, need_weights=True, average_attn_weights=False)
        tensors[f"{name}/query"] = query.contiguous()
        if kind != "self":
            tensors[f"{name}/key"] = key.contiguous()
        if kind == "qkv":
            tensors[f"{name}/value"] = value.contiguous()
        tensors[f"{name}/out"] = out[0].float().contiguous()
        if store_weights:
            tensors[f"{name}/weights"] = w[0].reshape(h * nq, nk).float().contiguous()
        tensors[f"{name}/heads"] = torch.tensor([h], dtype=torch.float32)
        tensors[f"{name}/causal"] = torch.tensor([1.0 if causal else 0.0])

    # (name, Dt, Dv, Nt, Nv, H)
    tensors = files["modules_mha"]
    for name, dt, dv, nt, nv, h in [
        ("cma_h1", 24, 16, 7, 11, 1),
        ("cma_h2", 24, 16, 7, 11, 2),
        ("cma_h4_nt1", 24, 16, 1, 9, 4),
        ("cma_h1_blocks", 12, 8, 70, 140, 1),  # several kernel blocks in both directions
    ]:
        m = CrossModalAttention(dt, dv)
        add_state(tensors, name, m)
        text, vision = randn(nt, dt), randn(nv, dv)
        md = m.double()
        with torch.no_grad():
            ct, cv = md(text.double()[None], vision.double()[None])
            ot, ov = md.attend(text.double()[None], vision.double()[None], heads=h)
            if h == 1:  # the SPEC formula, written out
                assert torch.allclose(ot[0], torch.softmax(ct[0] / math.sqrt(dv), -1) @ vision.double())
                assert torch.allclose(ov[0], torch.softmax(cv[0] / math.sqrt(dt), -1) @ text.double())
        tensors[f"{name}/text"] = text.contiguous()
        tensors[f"{name}/vision"] = vision.contiguous()
        if nt * nv <= 200:
            tensors[f"{name}/cross_text"] = ct[0].float().contiguous()
            tensors[f"{name}/cross_vision"] = cv[0].float().contiguous()
        tensors[f"{name}/text_out"] = ot[0].float().contiguous()
        tensors[f"{name}/vision_out"] = ov[0].float().contiguous()
        tensors[f"{name}/heads"] = torch.tensor([h], dtype=torch.float32)

    OUT.mkdir(parents=True, exist_ok=True)
    for file, tensors in files.items():
        save_file(tensors, str(OUT / f"{file}.safetensors"))
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        print(f"{file}.safetensors: {len(tensors)} tensors, {total} bytes of data")


if __name__ == "__main__":
    main()
