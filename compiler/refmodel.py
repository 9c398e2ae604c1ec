"""The integer reference model: exactly the arithmetic of the generated HLS code, in numpy.

The C-simulation testbench of the HLS back-end compares every output element of the generated
accelerator with this model, so the two must agree bit for bit.  The arithmetic, which the HLS
library header `templates/hls/lib/dnac_ops.h` implements line for line:

* **Tensors** are signed integers, NCHW, each saturated to the width its consumers read
  (`tensor_bits`: the narrowest `a_bits` among the consumers; a network output keeps its own
  layer's `a_bits`).  One convention for all: activations are *signed* `ap_int<bits>`, also
  after a ReLU (whose outputs then use the non-negative half of the range).
* **conv / dwconv / grouped conv / linear**: `acc = bias[k] + sum w * x` in 64-bit integers
  (inputs zero-padded; a linear layer reads its input flattened in NCHW order), then
  **requantization** per output channel k, `y = (acc * mult[k] + 2^(shift[k]-1)) >> shift[k]` (an
  arithmetic shift: rounding half up; mult signed), then the activation as a clamp `[lo, hi]`,
  which also saturates to the output width.
* **add**: `acc = sum of the inputs`, then the same requantization and clamp.
* **maxpool**: the maximum over the window (padding positions are skipped), clamped.
* **avgpool**: `floor((2 * sum + n) / (2 * n))` over the window (zero padding counted,
  n = R * S as PyTorch's `count_include_pad=True`), i.e. division rounding half up, clamped.
* **activations** as clamps: none `[qmin, qmax]`, ReLU `[0, qmax]`, ReLU6 `[0, min(qmax, 6 <<
  max(0, bits - 4))]` (6.0 in a fixed-point format with 4 integer bits).

`generate(workload, seed)` draws weights, biases and inputs from `numpy.random.default_rng(seed)`
(uniform over each layer's `w_bits` / `a_bits` range), then runs the network once, choosing each
output channel's `(mult, shift)` from its own accumulators so that the 99th percentile of |acc|
maps to the top of the output range (a little saturation is exercised on purpose).  `forward` reruns the same
network with given parameters (the testbench's "flip one weight bit" check uses it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dnac.compiler.errors import DesignError
from dnac.compiler.vocab import Activation, OpKind
from dnac.compiler.workload.layer import INPUT, Layer, Workload

#: Multipliers are 15-bit unsigned: mult in [2^14, 2^15) whenever the scale allows.
MULT_BITS = 15
#: |acc * mult| must stay below this (the C++ computes it in ap_int<64>).
_PRODUCT_LIMIT = 1 << 62
#: Products summed in float64 are exact while every partial sum stays below 2^53.
_FLOAT_EXACT = 1 << 53


@dataclass(frozen=True, eq=False)
class Requant:
    """A layer's output stage: `clamp((acc * mult[k] + round) >> shift[k], lo, hi)`, with one
    (mult, shift) per output channel k (a trained network folds BatchNorm into them; scalars
    broadcast to every channel).  `mult` is signed (a negative BatchNorm gain flips the sign)."""

    mult: np.ndarray | int  # [K] or a scalar
    shift: np.ndarray | int  # [K] or a scalar, each in [0, 62]
    lo: int
    hi: int

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Requant) and (self.lo, self.hi) == (other.lo, other.hi)
                and np.array_equal(self.mult, other.mult) and np.array_equal(self.shift, other.shift))

    __hash__ = None  # type: ignore[assignment]

    def channels(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(mult, shift) as [k] int64 arrays."""
        m = np.broadcast_to(np.asarray(self.mult, dtype=np.int64), (k,))
        sh = np.broadcast_to(np.asarray(self.shift, dtype=np.int64), (k,))
        return m, sh

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """`acc` is [N, K, ...]: channel k takes (mult[k], shift[k])."""
        k = acc.shape[1]
        m, sh = self.channels(k)
        peak = np.abs(acc).reshape(acc.shape[0], k, -1).max(axis=(0, 2), initial=0) if acc.size else np.zeros(k)
        if any(int(a) * abs(int(b)) >= _PRODUCT_LIMIT for a, b in zip(peak, m)):
            raise DesignError("<refmodel>", "requant", "accumulator x multiplier exceeds 62 bits")
        view = (1, k) + (1,) * (acc.ndim - 2)
        v = acc.astype(np.int64) * m.reshape(view)
        half = np.where(sh > 0, np.left_shift(np.int64(1), np.maximum(sh - 1, 0)), 0).reshape(view)
        return np.clip((v + half) >> sh.reshape(view), self.lo, self.hi)


@dataclass
class Golden:
    """Parameters, input and every tensor of one deterministic run."""

    seed: int
    input: np.ndarray  # (N, C, H, W)
    weights: dict[str, np.ndarray]  # per MAC layer: (K, C / groups, R, S)
    biases: dict[str, np.ndarray]  # per MAC layer with a bias: (K,)
    quant: dict[str, Requant]  # per layer
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # every layer's output (N, K, P, Q)


def signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def tensor_bits(w: Workload) -> dict[str, int]:
    """The width each tensor (INPUT and every layer's output) is stored and saturated at."""
    readers: dict[str, list[int]] = {}
    for layer in w.layers:
        for src in layer.inputs:
            readers.setdefault(src, []).append(layer.a_bits)
    out = {INPUT: min(readers.get(INPUT, [w.layers[0].a_bits]))}
    for layer in w.layers:
        out[layer.name] = min(readers.get(layer.name, [layer.a_bits]))
    return out


def clamp_range(bits: int, activation: Activation) -> tuple[int, int]:
    """`[lo, hi]` of a layer's output: the activation and the saturation to `bits` in one clamp."""
    qmin, qmax = signed_range(bits)
    if activation is Activation.RELU:
        return 0, qmax
    if activation is Activation.RELU6:
        return 0, min(qmax, 6 << max(0, bits - 4))
    return qmin, qmax


def choose_scales(acc: np.ndarray, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (axis 1 of `acc`), `choose_scale` of that channel's accumulators."""
    pairs = [choose_scale(acc[:, k], qmax) for k in range(acc.shape[1])]
    return (np.array([m for m, _ in pairs], dtype=np.int64), np.array([s for _, s in pairs], dtype=np.int64))


def choose_scale(acc: np.ndarray, qmax: int) -> tuple[int, int]:
    """(mult, shift) mapping the 99th percentile of |acc| onto `qmax`, integers only.  The
    multiplier takes MULT_BITS bits where `|acc| * mult` stays below 2^62 (the output stage's
    ap_int<64>), fewer for accumulators too wide for that (24-bit and wider layers)."""
    mags = np.sort(np.abs(acc).reshape(-1))
    ref = max(1, int(mags[(len(mags) - 1) * 99 // 100])) if len(mags) else 1
    cap = max(1, (_PRODUCT_LIMIT - 1) // max(1, int(mags[-1]) if len(mags) else 1))
    best = (1, 0)
    for shift in range(63):
        mult = (qmax << shift) // ref
        if mult > cap:
            return best
        if mult >= 1:
            best = (mult, shift)
        if mult >= 1 << (MULT_BITS - 1):
            return mult, shift
    return best


# ----------------------------------------------------------------------------- layer arithmetic
def _padded(x: np.ndarray, layer: Layer, fill: int) -> np.ndarray:
    pr, pc = layer.padding
    return np.pad(x, ((0, 0), (0, 0), (pr, pr), (pc, pc)), constant_values=fill)


def _windows(xp: np.ndarray, layer: Layer, r: int, s: int) -> np.ndarray:
    """xp[:, :, p * sr + r, q * sc + s] for all p, q."""
    sr, sc = layer.stride
    return xp[:, :, r: r + sr * (layer.P - 1) + 1: sr, s: s + sc * (layer.Q - 1) + 1: sc]


def conv_acc(layer: Layer, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """bias + sum over (c, r, s) of w[k, c, r, s] * x[n, g(k) * Cg + c, p * sr + r - pr, ...]."""
    N, G = layer.N, layer.groups
    cg, kg = layer.C // G, layer.K // G
    xp = _padded(x, layer, 0)
    bound = cg * layer.R * layer.S * (1 << (layer.w_bits - 1)) * (1 << (layer.a_bits - 1))
    exact_float = bound + (int(np.abs(b).max(initial=0)) if b is not None else 0) < _FLOAT_EXACT
    dtype = np.float64 if exact_float else np.int64
    wg = w.reshape(G, kg, cg, layer.R, layer.S).astype(dtype)
    acc = np.zeros((N, G, kg, layer.P, layer.Q), dtype=dtype)
    for r in range(layer.R):
        for s in range(layer.S):
            win = _windows(xp, layer, r, s).reshape(N, G, cg, layer.P, layer.Q).astype(dtype)
            acc += np.einsum("gkc,ngcpq->ngkpq", wg[..., r, s], win, optimize=exact_float)
    out = acc.reshape(N, layer.K, layer.P, layer.Q)
    out = np.rint(out).astype(np.int64) if exact_float else out
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


def pool_out(layer: Layer, x: np.ndarray, q: Requant) -> np.ndarray:
    if layer.op is OpKind.MAXPOOL:
        low = np.iinfo(np.int64).min
        xp = _padded(x, layer, low)
        best = np.full((layer.N, layer.K, layer.P, layer.Q), low, dtype=np.int64)
        for r in range(layer.R):
            for s in range(layer.S):
                best = np.maximum(best, _windows(xp, layer, r, s))
        return np.clip(best, q.lo, q.hi)
    xp = _padded(x, layer, 0)
    total = np.zeros((layer.N, layer.K, layer.P, layer.Q), dtype=np.int64)
    for r in range(layer.R):
        for s in range(layer.S):
            total += _windows(xp, layer, r, s)
    n = layer.R * layer.S
    return np.clip(np.floor_divide(2 * total + n, 2 * n), q.lo, q.hi)


def _inputs(layer: Layer, tensors: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The layer's operands, reshaped to its (N, C, H, W) (a linear layer reads them flattened)."""
    return [tensors[src].reshape(layer.N, layer.C, layer.H, layer.W) for src in layer.inputs]


def accumulate(layer: Layer, xs: list[np.ndarray], w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    """What a conv / linear / add layer feeds its requantization."""
    if layer.op.has_weights:
        assert w is not None
        return conv_acc(layer, xs[0], w, b)
    if layer.op is OpKind.ADD:
        return np.sum(np.stack(xs), axis=0).reshape(layer.N, layer.K, layer.P, layer.Q)
    raise ValueError(f"{layer.op} has no accumulator")


def run_layer(layer: Layer, xs: list[np.ndarray], w: np.ndarray | None, b: np.ndarray | None,
              q: Requant) -> np.ndarray:
    if layer.op.is_pool:
        return pool_out(layer, xs[0], q)
    return q.apply(accumulate(layer, xs, w, b))


# ----------------------------------------------------------------------------- whole network
def _check(w: Workload) -> None:
    for layer in w.layers:
        if layer.op is OpKind.ADD and len(layer.inputs) > 4:
            raise DesignError(layer.source or w.name, f"layers.{layer.name}.inputs", "adds of more than 4 tensors "
                              "are not supported by the HLS back-end")
        if layer.N != w.batch:
            raise DesignError(layer.source or w.name, f"layers.{layer.name}.N", f"batch {layer.N} differs from "
                              f"the network's {w.batch}")


def generate(w: Workload, seed: int) -> Golden:
    """Draw parameters and an input from `seed`, choose every layer's scale, run (module docstring)."""
    _check(w)
    rng = np.random.default_rng(seed)
    bits = tensor_bits(w)
    lo, hi = signed_range(bits[INPUT])
    x = rng.integers(lo, hi + 1, size=(w.batch, *w.input_shape), dtype=np.int64)
    g = Golden(seed, x, {}, {}, {})
    tensors: dict[str, np.ndarray] = {INPUT: x}
    for layer in w.layers:
        wt = bias = None
        if layer.op.has_weights:
            wlo, whi = signed_range(layer.w_bits)
            wt = rng.integers(wlo, whi + 1, size=(layer.K, layer.c_per_group, layer.R, layer.S), dtype=np.int64)
            g.weights[layer.name] = wt
            if layer.bias:
                span = 1 << (layer.w_bits + layer.a_bits - 3)
                bias = rng.integers(-span, span + 1, size=layer.K, dtype=np.int64)
                g.biases[layer.name] = bias
        lo, hi = clamp_range(bits[layer.name], layer.activation)
        xs = _inputs(layer, tensors)
        if layer.op.is_pool:
            q = Requant(1, 0, lo, hi)
        else:
            mult, shift = choose_scales(accumulate(layer, xs, wt, bias), signed_range(bits[layer.name])[1])
            q = Requant(mult, shift, lo, hi)
        g.quant[layer.name] = q
        tensors[layer.name] = run_layer(layer, xs, wt, bias, q)
    g.tensors = {k: v for k, v in tensors.items() if k != INPUT}
    return g


def forward(w: Workload, g: Golden, *, weights: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every layer's output for `g`'s input and scales (and `weights` in place of `g.weights`)."""
    ws = g.weights if weights is None else weights
    tensors: dict[str, np.ndarray] = {INPUT: g.input}
    for layer in w.layers:
        tensors[layer.name] = run_layer(layer, _inputs(layer, tensors), ws.get(layer.name), g.biases.get(layer.name),
                                        g.quant[layer.name])
    return {k: v for k, v in tensors.items() if k != INPUT}
