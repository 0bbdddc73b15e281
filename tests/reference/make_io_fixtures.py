"""Writes the I/O test fixtures under tests/fixtures/io/ with PyTorch, NumPy and the `safetensors` package.

Run from the repository root (needs torch >= 2.1, numpy, safetensors):

    python3 tests/reference/make_io_fixtures.py

Outputs (all small, committed):
  conversions.safetensors  reference float <-> float16/bfloat16/float8 conversions computed by torch's .to()
  reference.safetensors    one tensor of every dtype, written by safetensors.torch.save_file, with metadata
  *.npy                    arrays written by np.save / np.lib.format.write_array: every supported descr,
                           Fortran order, big-endian, format versions 2.0 and 3.0, 0-d and empty arrays

Every array in reference.safetensors and in the .npy files holds value(k) = ((7 k) mod 11 - 5) / 2 at C-order
flat index k (integer dtypes: (7 k) mod 11 - 5, unsigned: (7 k) mod 11, bool: k mod 3 == 0), so the C++ tests
recompute the expected values instead of storing them.
"""

import os

import numpy as np
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "io")


def value_f(n):
    k = np.arange(n)
    return ((7 * k) % 11 - 5) / 2.0


def value_i(n):
    k = np.arange(n)
    return (7 * k) % 11 - 5


def value_u(n):
    return (7 * np.arange(n)) % 11


def value_b(n):
    return np.arange(n) % 3 == 0


def f32_from_bits(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def fp8_inputs(dt, rng, n_random):
    """In-range floats for float -> fp8: every representable value, every midpoint (ties), the float32
    neighbours of each midpoint, and log-uniform random values down to below the smallest subnormal."""
    finite = torch.arange(256, dtype=torch.uint8).view(dt).float()
    finite = finite[torch.isfinite(finite)]
    pos = torch.unique(finite[finite >= 0]).double()  # sorted
    mids = ((pos[1:] + pos[:-1]) / 2).float()
    up = torch.nextafter(mids, torch.tensor(np.inf))
    down = torch.nextafter(mids, torch.tensor(-np.inf))
    vmax = float(pos[-1])
    lo = float(pos[1]) / 8  # well below the smallest subnormal
    mag = torch.from_numpy(np.exp(rng.uniform(np.log(lo), np.log(vmax), n_random))).float()
    mag = torch.clamp(mag, max=vmax)
    parts = torch.cat([pos.float(), mids, up, down, mag])
    parts = parts[parts.abs() <= vmax]
    signs = torch.from_numpy(rng.choice([-1.0, 1.0], parts.numel())).float()
    return (parts * signs).contiguous()


def conversions(rng):
    t = {}
    for name, dt in (("e4m3", torch.float8_e4m3fn), ("e5m2", torch.float8_e5m2)):
        t[f"{name}.all_bits_to_f32"] = torch.arange(256, dtype=torch.uint8).view(dt).float()
        x = fp8_inputs(dt, rng, 2000)
        t[f"{name}.from_f32.input"] = x
        t[f"{name}.from_f32.bits"] = x.to(dt).view(torch.uint8)

    # float -> f16: log-uniform magnitudes over the whole finite range including subnormals, plus ties.
    mag = np.exp(rng.uniform(np.log(2.0**-26), np.log(65504.0), 1500)).astype(np.float32)
    h = rng.integers(0, 0x7BFF, 500).astype(np.uint16).view(np.float16).astype(np.float64)
    h_next = np.nextafter(h.astype(np.float16), np.float16(np.inf)).astype(np.float64)
    ties = ((h + h_next) / 2).astype(np.float32)  # exact midpoints between neighbouring halves
    x = np.concatenate([mag, ties]) * rng.choice([-1.0, 1.0], 2000).astype(np.float32)
    x = torch.from_numpy(x.astype(np.float32))
    t["f16.from_f32.input"] = x
    t["f16.from_f32.bits"] = x.to(torch.float16).view(torch.int16)

    # float -> bf16: random finite float32 bit patterns plus exact ties (low 16 bits == 0x8000).
    bits = rng.integers(0, 0x7F800000, 2000, dtype=np.uint32)
    bits[:500] = (bits[:500] & 0xFFFF0000) | 0x8000
    bits |= rng.choice([0, 0x80000000], 2000).astype(np.uint32)
    x = torch.from_numpy(f32_from_bits(bits).copy())
    t["bf16.from_f32.input"] = x
    t["bf16.from_f32.bits"] = x.to(torch.bfloat16).view(torch.int16)

    # 16-bit -> float on random non-NaN bit patterns.
    for name, dt, top in (("f16", torch.float16, 0x7C00), ("bf16", torch.bfloat16, 0x7F80)):
        b = rng.integers(0, top + 1, 1000).astype(np.int32) | rng.choice([0, 0x8000], 1000)
        b16 = torch.from_numpy(b.astype(np.uint16).view(np.int16).copy())
        t[f"{name}.to_f32.bits"] = b16
        t[f"{name}.to_f32.value"] = b16.view(dt).float()
    save_file(t, os.path.join(OUT, "conversions.safetensors"))


def reference_safetensors():
    def f(shape, dt):
        n = int(np.prod(shape))
        return torch.from_numpy(value_f(n).reshape(shape)).to(dt)

    t = {
        "f32": f((2, 3), torch.float32),
        "f64": f((3,), torch.float64),
        "f16": f((3, 2), torch.float16),
        "bf16": f((2, 2), torch.bfloat16),
        "f8_e4m3": f((2, 4), torch.float8_e4m3fn),
        "f8_e5m2": f((4,), torch.float8_e5m2),
        "i8": torch.from_numpy(value_i(5).astype(np.int8)),
        "i16": torch.from_numpy(value_i(3).astype(np.int16)),
        "i32": torch.from_numpy(value_i(4).astype(np.int32).reshape(2, 2)),
        "i64": torch.from_numpy(value_i(2).astype(np.int64)),
        "u8": torch.from_numpy(value_u(4).astype(np.uint8)),
        "bool": torch.from_numpy(value_b(3)),
        "scalar": torch.tensor(-2.5, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "layers.0.weight": f((4, 3), torch.float32),
    }
    save_file(t, os.path.join(OUT, "reference.safetensors"), metadata={"format": "pt", "note": "dskit fixture"})


def npy_files():
    def save(name, arr, version=None):
        path = os.path.join(OUT, name)
        if version is None:
            np.save(path, arr)
        else:
            with open(path, "wb") as fh:
                np.lib.format.write_array(fh, arr, version=version)

    save("f4.npy", value_f(12).astype(np.float32).reshape(3, 4))
    save("f8.npy", value_f(5).astype(np.float64))
    save("f2.npy", value_f(6).astype(np.float16).reshape(2, 3))
    save("i1.npy", value_i(4).astype(np.int8))
    save("u1.npy", value_u(4).astype(np.uint8))
    save("i2.npy", value_i(3).astype(np.int16))
    save("i4.npy", value_i(4).astype(np.int32).reshape(2, 2))
    save("i8.npy", value_i(3).astype(np.int64))
    save("b1.npy", value_b(5))
    save("f4_fortran.npy", np.asfortranarray(value_f(12).astype(np.float32).reshape(3, 4)))
    save("f4_fortran_3d.npy", np.asfortranarray(value_f(24).astype(np.float32).reshape(2, 3, 4)))
    save("f4_be.npy", value_f(12).astype(">f4").reshape(3, 4))
    save("i4_be.npy", value_i(6).astype(">i4").reshape(2, 3))
    save("f8_be_fortran.npy", np.asfortranarray(value_f(6).astype(">f8").reshape(2, 3)))
    save("f4_v2.npy", value_f(12).astype(np.float32).reshape(3, 4), version=(2, 0))
    save("f4_v3.npy", value_f(12).astype(np.float32).reshape(3, 4), version=(3, 0))
    save("scalar.npy", np.array(-2.5, dtype=np.float32))
    save("empty.npy", np.zeros((0, 3), dtype=np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240601)
    conversions(rng)
    reference_safetensors()
    npy_files()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
