"""Reference fixtures for dskit's composition layers (tests/layers).

Builds small PyTorch models out of nn.Linear, nn.LayerNorm, nn.RMSNorm, nn.GELU, nn.SiLU and a
Residual(nn.Sequential) module, saves their state_dicts with safetensors.torch.save_file, and stores
inputs and PyTorch's outputs, so the C++ models assembled from sequential<>/residual<>/named<> can be
checked to load the same names and reproduce the outputs.

Run from the repository root (needs torch and safetensors; the tests themselves need no Python):

    python3 tests/reference/make_layer_fixtures.py

Writes tests/fixtures/layers/:
  model.safetensors       float32 state_dict of `make_model()`; metadata "parameter_count" = sum(p.numel())
  model_bf16.safetensors  the same state_dict cast to bfloat16
  named.safetensors       state_dict of an MLP whose children have names (fc1/act/fc2)
  io.safetensors          x.<n> [n, 40] inputs for n in (1, 17, 64); y.<n> float32 outputs of the model;
                          y_bf16.<n> float32 outputs of the model with bf16-rounded weights;
                          named.x [9, 24], named.y [9, 24]
"""

import os
from collections import OrderedDict

import torch
from torch import nn
from safetensors.torch import save_file

D = 40  # model width
H = 4 * D  # MLP hidden width
C = 24  # head outputs
TOKENS = (1, 17, 64)


class Residual(nn.Sequential):
    """x + Sequential(x): what dskit::residual<...> loads (children named "0.", "1.", ...)."""

    def forward(self, x):
        return x + super().forward(x)


def make_model():
    return nn.Sequential(
        Residual(nn.LayerNorm(D), nn.Linear(D, H), nn.GELU(), nn.Linear(H, D)),
        Residual(nn.RMSNorm(D), nn.Linear(D, H), nn.SiLU(), nn.Linear(H, D, bias=False)),
        nn.LayerNorm(D),
        nn.Linear(D, C),
    )


def randomize_norms(model):
    # Fresh norms have weight 1 and bias 0, which would not test that they are read.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.RMSNorm)):
                m.weight.uniform_(0.5, 1.5)
                if getattr(m, "bias", None) is not None:
                    m.bias.uniform_(-0.2, 0.2)


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "layers")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(20240611)

    model = make_model().eval()
    randomize_norms(model)
    n_params = sum(p.numel() for p in model.parameters())
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"parameter_count": str(n_params)})

    bf16_state = {k: v.to(torch.bfloat16) for k, v in state.items()}
    save_file(bf16_state, os.path.join(out_dir, "model_bf16.safetensors"),
              metadata={"parameter_count": str(n_params)})
    model_bf16 = make_model().eval()  # float32 arithmetic on the bf16-rounded weights
    model_bf16.load_state_dict({k: v.float() for k, v in bf16_state.items()})

    io = {}
    with torch.no_grad():
        for n in TOKENS:
            x = torch.randn(n, D)
            io[f"x.{n}"] = x
            io[f"y.{n}"] = model(x)
            io[f"y_bf16.{n}"] = model_bf16(x)

        named = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(24, 48)),
            ("act", nn.SiLU()),
            ("fc2", nn.Linear(48, 24)),
        ])).eval()
        save_file({k: v.contiguous() for k, v in named.state_dict().items()},
                  os.path.join(out_dir, "named.safetensors"),
                  metadata={"parameter_count": str(sum(p.numel() for p in named.parameters()))})
        x = torch.randn(9, 24)
        io["named.x"] = x
        io["named.y"] = named(x)

    save_file({k: v.contiguous() for k, v in io.items()}, os.path.join(out_dir, "io.safetensors"))
    print(f"wrote {out_dir}: {n_params} parameters; keys {sorted(state)}")


if __name__ == "__main__":
    main()
