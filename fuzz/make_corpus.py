#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/ (one per scenario).

fuzz_layers.cpp decodes its input with libFuzzer's FuzzedDataProvider, which takes
integers from the END of the input (most significant byte first, as many bytes as the
range needs) and the raw bytes of the "raw bits" data mode from the front. Seed mirrors
decode() field by field, so every seed names the scenario it starts the fuzzer in.
Keep the field order here in step with decode() in fuzz_layers.cpp.

    python3 fuzz/make_corpus.py            # rewrites fuzz/corpus/seed-*

fuzz/corpus/regress-* are inputs fuzzing found (each once broke an invariant check of the
harness's own tolerance logic, or showed a documented limit); this script leaves them alone.
"""

import os
import struct
import sys

FORMS = {"batch1d": 0, "batch2d": 1, "layer": 2, "group": 3, "instance": 4}
# Indices into pick_eps / pick_momentum / pick_noise / pick_order / pick_alpha tables.
EPS = {"default": 0, "zero": 16, "1e-12": 17, "1e-3": 18, "0.1": 19, "1": 20, "100": 21, "1e-30": 22,
       "1e10": 23, "1e-40": 24, "neg": 28, "nan": 29, "inf": 30, "negzero": 31}
MOMENTUM = {"0.1": 0, "none": 6, "0": 8, "1": 9, "0.5": 10, "neg": 12, "1.5": 13, "nan": 14}
NOISE = {"0": 0, "0.4": 5, "1": 6, "5": 8, "10": 9, "12": 10, "neg": 12, "nan": 13, "inf": 14, "default": 15}
ORDER = {2: 0, 1: 9, "zero": 14, "three": 15}
ALPHA = {1: 0, 0.5: 6, 0: 7, 2: 8, 10: 10, 100: 12, "neg": 13, "nan": 14}
SCALES = [1, 1, 1, 0.5, 2, 1e-3, 1e3, 1e-8, 1e8, 1e-20, 1e20, 1e-38, 1e38]
OFFSETS = [0, 0, 0, 1, -3, 0.1, 1e3, -1e6, 1e9, 3.5]
MODES = {"moderate": 0, "lognormal": 1, "constant": 2, "all_equal_but_one": 3, "two_values": 4, "ties": 5,
         "heavy": 6, "ramp": 7, "raw": 8, "mixed": 9}
ESTIMATORS = {"newton_step": 0, "gradient_step": 1, "newton": 2, "exact": 3}
SIMD_PATHS = {"automatic": 0, "scalar": 1, "native": 2, "sse2": 3, "avx2": 4, "avx512": 5}
COUNTS = {"as_decoded": 0, "negative": 4, "max": 5, "below_max": 6, "min": 7}
ALIASES = {"none": 0, "var_is_mean": 1, "lambda_in_var": 2, "norm_is_lambda": 3, "mean_in_input": 4, "var_is_output": 5,
           "lambda_in_weight": 6, "norm_in_bias": 7, "mean_in_noise": 8, "count_in_mean": 9, "count_in_input": 10,
           "count_in_output": 11}
MISMATCHES = ["none", "form", "num_groups", "estimator", "newton_iterations", "affine", "standardize", "power_transform",
              "eps", "alpha", "order", "noise_train", "momentum", "track_running_stats", "evaluation_map",
              "normalized_shape"]
EXTENSION_MARKER = 0xA5
SPECIALS = {"nan": 0, "inf": 1, "-inf": 2, "max": 3, "-max": 4, "half_max": 5, "denorm": 6, "-denorm": 7,
            "min_normal": 8, "zero": 9, "-zero": 10, "huge": 11, "sqrt_max": 12, "tiny": 13}


def nbytes(lo, hi):
    """Bytes FuzzedDataProvider::ConsumeIntegralInRange(lo, hi) reads."""
    span, count = hi - lo, 0
    while count < 8 and (span >> (8 * count)) > 0:
        count += 1
    return count


class Seed:
    def __init__(self):
        self.tail = []  # bytes in the order the provider reads them (from the end)
        self.front = b""

    def integer(self, value, lo, hi):
        assert lo <= value <= hi, (value, lo, hi)
        n = nbytes(lo, hi)
        self.tail += list((value - lo).to_bytes(n, "big")) if n else []

    def u32(self, value):
        self.integer(value, 0, 2**32 - 1)

    def data(self, mode="moderate", seed=1, scale=1, offset=0, skew=7, period=7, specials=()):
        self.integer(MODES[mode], 0, 9)
        self.u32(seed)
        self.integer(SCALES.index(scale), 0, len(SCALES) - 1)
        self.integer(OFFSETS.index(offset), 0, len(OFFSETS) - 1)
        self.integer(skew, 0, 30)
        self.integer(period, 2, 70)
        return specials

    def specials(self, allowed, specials):
        if not allowed:
            return
        self.integer(len(specials) + 4 if specials else 0, 0, 10)
        for position, kind in specials:
            self.integer(position, 0, 2**16 - 1)
            self.integer(SPECIALS[kind], 0, 13)

    def bytes(self):
        return self.front + bytes(reversed(self.tail))


def make(form="batch2d", dims=(4, 3, 5, 5), eps="default", momentum="0.1", noise="default", order=2, alpha=1,
         affine=True, track=True, standardize=True, power=True, mode="train", prime=False, breakage=0,
         running_init=0, noise_kind=1, noise_seed=7, noise_call=0, arrangement=0, nulls=0, grad_in_place=False,
         x=None, grad=None, weight=None, bias=None, running=None, normals=None, raw=b"", ext=None):
    s = Seed()
    s.integer(FORMS[form], 0, 4)
    s.integer(EPS[eps], 0, 31)
    s.integer(MOMENTUM[momentum], 0, 15)
    s.integer(NOISE[noise], 0, 15)
    s.integer(ORDER[order], 0, 15)
    s.integer(ALPHA[alpha], 0, 15)
    flags = (0 if affine else 1) | (0 if track else 2) | (0 if standardize else 12) | (0 if power else 48)
    flags |= (64 if mode == "eval" else 0) | (128 if prime else 0)
    s.integer(flags, 0, 255)
    if form == "batch1d":
        s.integer(dims[0], 1, 64), s.integer(dims[1], 1, 16)
    elif form in ("batch2d", "instance"):
        for d, hi in zip(dims, (8, 8, 17, 17)):
            s.integer(d, 1, hi)
    elif form == "group":  # dims = (N, G, C/G, spatial...)
        n, g, per, spatial = dims[0], dims[1], dims[2], dims[3:]
        s.integer(n, 1, 6), s.integer(g, 1, 4), s.integer(per, 1, 4), s.integer(len(spatial), 0, 2)
        for d, hi in zip(spatial, (19, 9)):
            s.integer(d, 1, hi)
    else:  # layer: dims = (leading..., ), normalized
        lead, normalized = dims
        s.integer(len(normalized), 1, 3), s.integer(len(lead), 0, 2)
        for d in lead:
            s.integer(d, 1, 6)
        for i, d in enumerate(normalized):
            s.integer(d, 1, 33 if i == 0 else 9)
    s.integer(breakage, 0, 63)
    s.integer({0: 0, 1: 5, 2: 7}[running_init], 0, 7)
    s.integer({0: 0, 1: 1, 2: 6}[noise_kind], 0, 7)
    s.u32(noise_seed)
    s.integer(noise_call, 0, 3)
    s.integer({0: 0, 1: 26, 2: 31}[arrangement], 0, 31)
    s.integer(nulls + 55 if nulls else 0, 0, 63)
    s.integer(0 if grad_in_place else 1, 0, 7)
    x = x or {}
    s.specials(True, s.data(**x))
    for spec, allow_range in ((grad, 7), (weight, 7), (bias, 7)):
        spec = dict(spec or {})
        s.integer(0 if spec.get("specials") else 1, 0, allow_range)
        s.specials(bool(spec.get("specials")), s.data(**spec))
    running = dict(running or {})
    s.specials(running_init == 2, s.data(**running))
    normals = dict(normals or {})
    s.integer(0 if normals.get("specials") else 1, 0, 15)
    s.specials(bool(normals.get("specials")), s.data(**normals))
    s.integer(0 if weight else 1, 0, 3)
    s.integer(0 if bias else 1, 0, 3)
    if ext is not None:
        extension(s, **ext)
    s.front = raw
    return s.bytes()


def extension(s, estimator="newton_step", iterations=1, polynomial=False, simd_path="automatic", count="as_decoded",
              alias="none", mismatch="none", choice=0):
    """The fields decode_extension() reads, behind the marker (newton_iterations 0 and 17 are invalid)."""
    s.integer(EXTENSION_MARKER, 0, 255)
    s.integer(ESTIMATORS[estimator], 0, 3)
    s.integer({0: 17, 17: 18}.get(iterations, iterations), 0, 18)
    s.integer(1 if polynomial else 0, 0, 255)
    s.integer(SIMD_PATHS[simd_path], 0, 5)
    s.integer(COUNTS[count], 0, 7)
    s.integer(ALIASES[alias] + 4 if alias != "none" else 0, 0, 15)
    m = MISMATCHES.index(mismatch)
    s.integer(m + 15 if m else 0, 0, 30)
    s.integer(choice, 0, 255)


def extension_seeds():
    """Seeds for the extension fields: estimators, evaluation maps, SIMD paths, counts, aliasing, mismatches."""
    lognormal = {"mode": "lognormal", "seed": 3, "skew": 8}
    yield "ext_exact_group", make("group", (3, 2, 3, 7, 2), x=lognormal, ext={"estimator": "exact"})
    yield "ext_exact_batch1d", make("batch1d", (32, 5), x=lognormal, ext={"estimator": "exact", "simd_path": "avx2"})
    yield "ext_newton4_layer", make("layer", ((3,), (21,)), x=lognormal, ext={"estimator": "newton", "iterations": 4})
    yield "ext_newton16_instance", make("instance", (2, 3, 6, 7), x=lognormal, ext={"estimator": "newton", "iterations": 16})
    yield "ext_newton0_invalid", make(ext={"estimator": "newton", "iterations": 0})
    yield "ext_newton17_invalid", make(ext={"estimator": "newton", "iterations": 17})
    yield "ext_gradient_step", make("batch1d", (9, 3), x=lognormal, ext={"estimator": "gradient_step"})
    yield "ext_polynomial_eval", make(mode="eval", prime=True, x=lognormal, ext={"polynomial": True})
    yield "ext_polynomial_eval_running", make("batch1d", (16, 7), mode="eval", running_init=1,
                                              ext={"polynomial": True, "simd_path": "avx2"})
    for path in ("scalar", "native", "sse2", "avx2", "avx512"):
        yield "ext_simd_" + path, make(x=lognormal, ext={"simd_path": path})
    yield "ext_count_negative", make(ext={"count": "negative"})
    yield "ext_count_min_eval", make(mode="eval", ext={"count": "min"})
    yield "ext_count_max_cumulative", make("batch1d", (9, 3), momentum="none", x=lognormal, ext={"count": "max"})
    yield "ext_count_below_max_primed", make(mode="eval", prime=True, momentum="none", ext={"count": "below_max"})
    for alias in list(ALIASES)[1:]:
        noise_kind = 2 if alias == "mean_in_noise" else 1
        yield "ext_alias_" + alias, make("batch1d", (8, 4), noise_kind=noise_kind, ext={"alias": alias})
    mismatch_forms = {"num_groups": ("group", (2, 2, 3, 5)), "normalized_shape": ("layer", ((2, 3), (4, 5))),
                      "form": ("batch2d", (4, 3, 5, 5))}
    for choice, mismatch in enumerate(MISMATCHES[1:]):
        form, dims = mismatch_forms.get(mismatch, ("instance" if choice % 2 else "batch2d", (3, 4, 5, 5)))
        yield "ext_mismatch_" + mismatch, make(form, dims, x=lognormal, ext={"mismatch": mismatch, "choice": choice})
    yield "ext_mismatch_form_batch1d", make("batch1d", (16, 4), x=lognormal, ext={"mismatch": "form", "choice": 1})
    yield "ext_mismatch_estimator_exact", make("group", (2, 2, 3, 5), x=lognormal,
                                               ext={"estimator": "exact", "mismatch": "estimator", "choice": 2})


def seeds():
    lognormal = {"mode": "lognormal", "seed": 3, "skew": 8}
    yield "batch2d_train", make()
    yield "batch2d_eval_primed", make(mode="eval", prime=True, x=lognormal)
    yield "batch1d_train_order1", make("batch1d", (32, 5), order=1, alpha=0.5, x=lognormal)
    yield "batch1d_momentum_none", make("batch1d", (9, 3), momentum="none", x=lognormal)
    yield "batch1d_two_rows", make("batch1d", (2, 4))
    yield "layer_train", make("layer", ((3,), (21,)), x=lognormal)
    yield "layer_3d", make("layer", ((2, 2), (5, 3, 2)), noise="1", x={"mode": "heavy", "seed": 9})
    yield "group_train", make("group", (3, 2, 3, 7, 2), x=lognormal)
    yield "group_no_spatial", make("group", (4, 4, 1), x={"mode": "mixed", "seed": 11})
    yield "instance_eval", make("instance", (2, 3, 6, 7), mode="eval", x=lognormal)
    yield "affine_params", make(weight={"mode": "moderate", "seed": 5, "offset": 1}, bias={"seed": 6})
    yield "no_affine_no_standardize", make(affine=False, standardize=False, x={"mode": "moderate", "scale": 0.5})
    yield "power_off", make(power=False, x=lognormal)
    yield "external_noise", make(noise_kind=2, noise="0.4", x=lognormal)
    yield "noise_none_source", make(noise_kind=0, noise="0.4")
    yield "in_place", make(arrangement=1, x=lognormal)
    yield "partial_overlap", make(arrangement=2)
    yield "grad_in_place", make(grad_in_place=True, x=lognormal)
    # Invalid options and buffers.
    yield "eps_negative", make(eps="neg")
    yield "eps_nan", make(eps="nan")
    yield "momentum_out_of_range", make(momentum="1.5")
    yield "noise_negative", make(noise="neg")
    yield "order_three", make(order="three")
    yield "alpha_nan", make(alpha="nan")
    yield "wrong_channels", make(breakage=1)
    yield "zero_dimension", make(breakage=2)
    yield "wrong_rank", make(breakage=6)
    yield "group_not_divisible", make("group", (2, 3, 1, 4), breakage=4)
    yield "layer_shape_mismatch", make("layer", ((2,), (6, 2)), breakage=5)
    yield "null_input", make(nulls=1)
    yield "null_weight", make(nulls=3)
    yield "running_var_null", make(nulls=5)
    yield "momentum_none_no_count", make(momentum="none", nulls=6)
    yield "batch_m1_train", make("batch1d", (1, 4))
    # Numerical extremes.
    yield "nan_in_training", make(x={"seed": 2, "specials": [(5, "nan")]})
    yield "inf_in_eval", make(mode="eval", x={"seed": 2, "specials": [(7, "inf"), (40, "-inf")]})
    yield "nan_eval_layer", make("layer", ((4,), (9,)), mode="eval", x={"specials": [(3, "nan")]})
    yield "zero_variance", make(x={"mode": "constant", "offset": 3.5})
    yield "zero_variance_eps0", make(eps="zero", x={"mode": "constant", "scale": 1e8})
    yield "two_values", make("batch1d", (2, 3), x={"mode": "two_values"})
    yield "all_equal_but_one", make("instance", (1, 2, 16, 16), x={"mode": "all_equal_but_one", "period": 70})
    yield "near_float_max", make(x={"mode": "moderate", "scale": 1e38})
    yield "huge_offset", make("layer", ((3,), (30,)), x={"mode": "moderate", "offset": 1e9, "scale": 1e-3})
    yield "denormals", make(x={"mode": "ties", "scale": 1e-38, "specials": [(0, "denorm"), (9, "-denorm")]})
    yield "max_values", make("batch1d", (8, 2), x={"specials": [(0, "max"), (1, "-max"), (4, "half_max")]})
    yield "alpha_100_order2", make(alpha=100, x={"mode": "heavy", "seed": 21})
    yield "eps_1_symmetric", make("group", (6, 3, 4, 3, 6), eps="1", mode="eval", alpha=2,
                                  x={"mode": "two_values"})
    yield "no_standardize_big", make("layer", ((2,), (16,)), standardize=False, x={"scale": 1e20})
    yield "wild_running_stats", make(mode="eval", running_init=2, running={"mode": "raw"},
                                     raw=bytes(range(0, 256, 3)))
    yield "moderate_running_stats", make(mode="eval", running_init=1)
    yield "raw_bits", make("layer", ((2,), (12,)), x={"mode": "raw"},
                           raw=struct.pack("<8f", 1.0, -2.5, float("nan"), 3.4e38, 1e-45, 0.0, -0.0, 7.0) * 3)
    yield from extension_seeds()


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.startswith("seed-"):
            os.remove(os.path.join(out, name))
    total = 0
    for name, data in seeds():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"wrote {len(list(seeds()))} seeds, {total} bytes, to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
