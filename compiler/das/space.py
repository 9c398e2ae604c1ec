"""The generic accelerator design space (GADS) of DNA Tab. 1 and TRIPS App. B, as knobs.

Every knob has a finite list of choices so that DAS can hold one Gumbel-softmax logit vector
per knob (DNA Eq. 7).  For a workload with L compute layers the knobs are:

    arch                    pipeline of chunks (DNNBuilder / Shen et al.) or one multi-cycle engine
    group[g].n_chunks       chunks of precision group g (depthwise layers and each precision form
                            their own group: DNA Sec. 3.5, TRIPS App. D)
    layer[l].chunk          layer-to-chunk slot; chunk = slot mod n_chunks (need not be consecutive)
    slot[s].noc             parallel style: over (K,P,Q), (K,C,R,S) or (K,R,Q)
    slot[s].unroll.<d>      PE-array parallelism of dim d (used when d is in the NoC style); the
                            product is the PE count, the factors the array shape
    slot[s].order.<lvl>[j]  loop order at DRAM / GB / RF: n picks without replacement
    slot[s].gb_size/_split  global-buffer size and its allocation among weights, inputs, outputs
    slot[s].rf_size/_split  register-file size per PE and its allocation
    layer[l].rf.<d>         loop size of dim d at the RF (the per-PE tile)
    layer[l].gb.<d>         loop size of dim d at the GB, among the factors that remain

The spatial loop size of a layer is min(unroll, bound) and the DRAM loop size is what remains,
so every choice vector decodes to a complete mapping; tiles that do not fit the chunk's
buffers are moved outward by `decode` (the padding of non-dividing sizes is charged).
In multi-cycle mode all standard layers share slot 0 of their kind's widest precision group
(and all depthwise layers that of theirs), at the widest precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import numpy as np

from dnac.compiler.das.batch import LayerTable
from dnac.compiler.targets import AsicTarget, FpgaTarget
from dnac.compiler.vocab import DIMS, MEM_LEVELS, TENSORS, ArchStyle, Dim, NocStyle
from dnac.compiler.workload.layer import Layer, Workload

#: Most chunks one precision group may use (DNNBuilder-style per-layer pipelines need many).
MAX_CHUNKS = 16

#: Unroll choices per dim; PE arrays beyond the target budget decode as infeasible designs.
UNROLL_CHOICES: dict[Dim, tuple[int, ...]] = {
    Dim.K: (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64),
    Dim.C: (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64),
    Dim.R: (1, 2, 3, 5, 7),
    Dim.S: (1, 2, 3, 5, 7),
    Dim.P: (1, 2, 4, 7, 8, 14, 16, 28, 32),
    Dim.Q: (1, 2, 4, 7, 8, 14, 16, 28, 32),
}
UNROLL_DIMS: tuple[Dim, ...] = tuple(UNROLL_CHOICES)

#: Buffer splits among (W, I, O) in eighths: every way to give each tensor at least one eighth.
SPLITS: tuple[tuple[int, int, int], ...] = tuple(
    (w, i, 8 - w - i) for w in range(1, 7) for i in range(1, 8 - w)
)

#: Global-buffer sizes in KiB, per target kind.  On the ZC706 (2.4 MB of BRAM in all) a chunk's
#: buffers range from a few BRAM18K to a fifth of the device; for the ASIC they are the 64-bit
#: SRAM depths 1024 .. 131072 that the Accelergy tables price exactly.
GB_KIB: dict[str, tuple[int, ...]] = {
    "fpga": (2, 4, 8, 16, 32, 64, 128, 256, 512),
    "asic": (8, 16, 32, 64, 128, 256, 512, 1024),
}

#: Register-file words per PE (all three tensors together), per target kind.  On the FPGA the RF
#: is a loop level, not a memory (the engine feeds every PE from the GB banks each cycle), so
#: these sizes only bound the per-PE loop tile; ASIC PEs may hold Eyeriss-size spads.
RF_WORDS: dict[str, tuple[int, ...]] = {
    "fpga": (3, 4, 6, 9, 12, 24),
    "asic": (3, 6, 12, 24, 48, 96, 192),
}


class KnobKind(StrEnum):
    ARCH = "arch"
    N_CHUNKS = "n_chunks"
    ASSIGN = "chunk"
    NOC = "noc"
    UNROLL = "unroll"
    ORDER = "order"
    GB_SIZE = "gb_size"
    GB_SPLIT = "gb_split"
    RF_SIZE = "rf_size"
    RF_SPLIT = "rf_split"
    RF_TILE = "rf"
    GB_TILE = "gb"


@dataclass(frozen=True)
class Knob:
    """One searchable accelerator parameter and its choices."""

    name: str
    kind: KnobKind
    choices: tuple[object, ...]

    @property
    def n(self) -> int:
        return len(self.choices)


@dataclass(frozen=True)
class Group:
    """Compute layers that may share a chunk: same kind (depthwise or not) and precision."""

    depthwise: bool
    w_bits: int
    a_bits: int
    layers: tuple[int, ...]  # indices into `DesignSpace.layers`
    first_slot: int  # chunk slots first_slot .. first_slot + n_slots - 1 belong to this group
    n_slots: int


def tile_candidates(bound: int) -> tuple[int, ...]:
    """Loop sizes offered for a dim of this bound: its divisors and the powers of two below it
    (the latter leave padding, which the cost model charges)."""
    c = {d for d in range(1, bound + 1) if bound % d == 0}
    k = 1
    while k < bound:
        c.add(k)
        k *= 2
    return tuple(sorted(c))


class DesignSpace:
    """The knobs for one workload on one target, with the index tables `decode` needs."""

    def __init__(self, workload: Workload, target: FpgaTarget | AsicTarget, *, max_chunks: int = MAX_CHUNKS) -> None:
        self.workload = workload
        self.target = target
        self.gb_kib = GB_KIB[target.KIND]
        self.banked = isinstance(target, FpgaTarget)  # GB tiles live in `fpga_buffers` banks
        self.rf_words = RF_WORDS[target.KIND]
        self.layers: tuple[Layer, ...] = workload.compute_layers
        if not self.layers:
            from dnac.compiler.errors import ModelError

            raise ModelError(workload.source or workload.name, "layers", "no conv or linear layer to accelerate")
        self.knobs: list[Knob] = []
        self.i_arch = self._add("arch", KnobKind.ARCH, tuple(ArchStyle))
        self.groups = self._groups(max_chunks)
        self.n_slots = sum(g.n_slots for g in self.groups)
        self.i_nchunks = np.array(
            [self._add(f"group[{gi}].n_chunks", KnobKind.N_CHUNKS, tuple(range(1, g.n_slots + 1)))
             for gi, g in enumerate(self.groups)], dtype=np.int64)
        self.layer_group = np.zeros(len(self.layers), dtype=np.int64)
        for gi, g in enumerate(self.groups):
            self.layer_group[list(g.layers)] = gi
        self.i_assign = np.array(
            [self._add(f"layer[{layer.name}].chunk", KnobKind.ASSIGN, tuple(range(self.groups[self.layer_group[li]].n_slots)))
             for li, layer in enumerate(self.layers)], dtype=np.int64)
        self.multi_slot = self._multi_cycle_slots()
        self.slot_bits = np.zeros((self.n_slots, 2), dtype=np.int64)  # datapath (w, a) bits per slot
        for g in self.groups:
            self.slot_bits[g.first_slot : g.first_slot + g.n_slots] = (g.w_bits, g.a_bits)
        for dw in (False, True):  # the shared engine of multi-cycle mode takes every layer of its kind:
            members = [g for g in self.groups if g.depthwise == dw]  # as wide as the widest weights and
            if members:  # the widest activations (w24/a24 and w8/a32 make w24/a32)
                shared = self.multi_slot[members[0].layers[0]]
                self.slot_bits[shared] = (max(g.w_bits for g in members), max(g.a_bits for g in members))
        self.i_noc = np.zeros(self.n_slots, dtype=np.int64)
        self.i_unroll = np.zeros((self.n_slots, len(UNROLL_DIMS)), dtype=np.int64)
        self.i_order = np.zeros((self.n_slots, len(MEM_LEVELS), len(DIMS)), dtype=np.int64)
        self.i_buf = np.zeros((self.n_slots, 4), dtype=np.int64)  # gb_size, gb_split, rf_size, rf_split
        for s in range(self.n_slots):
            self.i_noc[s] = self._add(f"slot[{s}].noc", KnobKind.NOC, tuple(NocStyle))
            for j, d in enumerate(UNROLL_DIMS):
                self.i_unroll[s, j] = self._add(f"slot[{s}].unroll.{d}", KnobKind.UNROLL, UNROLL_CHOICES[d])
            for li, lvl in enumerate(MEM_LEVELS):
                for j in range(len(DIMS)):
                    self.i_order[s, li, j] = self._add(f"slot[{s}].order.{lvl}[{j}]", KnobKind.ORDER, DIMS)
            self.i_buf[s] = [
                self._add(f"slot[{s}].gb_size", KnobKind.GB_SIZE, self.gb_kib),
                self._add(f"slot[{s}].gb_split", KnobKind.GB_SPLIT, SPLITS),
                self._add(f"slot[{s}].rf_size", KnobKind.RF_SIZE, self.rf_words),
                self._add(f"slot[{s}].rf_split", KnobKind.RF_SPLIT, SPLITS),
            ]
        self.table = LayerTable.of(self.layers)
        self.bounds = self.table.bounds
        ncand = max(len(tile_candidates(int(b))) for b in self.bounds.ravel())
        self.cand = np.zeros((len(self.layers), len(DIMS), ncand), dtype=np.int64)
        self.n_cand = np.zeros((len(self.layers), len(DIMS)), dtype=np.int64)
        self.i_rf = np.zeros((len(self.layers), len(DIMS)), dtype=np.int64)
        self.i_gb = np.zeros((len(self.layers), len(DIMS)), dtype=np.int64)
        for li, layer in enumerate(self.layers):
            for j, d in enumerate(DIMS):
                c = tile_candidates(int(self.bounds[li, j]))
                self.cand[li, j, : len(c)] = c
                self.cand[li, j, len(c):] = c[-1]
                self.n_cand[li, j] = len(c)
                self.i_rf[li, j] = self._add(f"layer[{layer.name}].rf.{d}", KnobKind.RF_TILE, c)
                self.i_gb[li, j] = self._add(f"layer[{layer.name}].gb.{d}", KnobKind.GB_TILE, c)
        self.n_choices = np.array([k.n for k in self.knobs], dtype=np.int64)

    # ------------------------------------------------------------------ construction
    def _add(self, name: str, kind: KnobKind, choices: tuple[object, ...]) -> int:
        self.knobs.append(Knob(name, kind, tuple(choices)))
        return len(self.knobs) - 1

    def _groups(self, max_chunks: int) -> list[Group]:
        keys: dict[tuple[bool, int, int], list[int]] = {}
        for li, layer in enumerate(self.layers):
            keys.setdefault((layer.is_depthwise, layer.w_bits, layer.a_bits), []).append(li)
        groups, first = [], 0
        for (dw, wb, ab), idx in sorted(keys.items()):
            n = min(len(idx), max_chunks)
            groups.append(Group(dw, wb, ab, tuple(idx), first, n))
            first += n
        return groups

    def _multi_cycle_slots(self) -> np.ndarray:
        """Per layer, the slot of the shared engine of its kind in multi-cycle mode."""
        slot = np.zeros(len(self.layers), dtype=np.int64)
        for dw in (False, True):
            members = [g for g in self.groups if g.depthwise == dw]
            if not members:
                continue
            widest = max(members, key=lambda g: (g.w_bits, g.a_bits, -g.first_slot))
            for g in members:
                slot[list(g.layers)] = widest.first_slot
        return slot

    # ------------------------------------------------------------------ size
    def size_log10(self) -> float:
        """log10 of the number of distinct designs the knobs express.

        Counted as DNA counts its space: the product over knobs of their choices, with loop
        orders as 7! permutations per level, unrolls only over the NoC style's dims, and
        chunk assignments as set partitions into at most n_chunks slots.  Loop sizes count every
        (RF, GB) pair of candidates that covers the bound without an all-padding iteration.
        """
        total = math.log10(len(ArchStyle))
        for g in self.groups:
            # assignments of |g| layers to n labelled slots, summed over n (slot labels matter:
            # each slot has its own hardware knobs)
            total += math.log10(sum(n ** len(g.layers) for n in range(1, g.n_slots + 1)))
        per_slot = math.log10(sum(math.prod(len(UNROLL_CHOICES[d]) for d in noc.dims) for noc in NocStyle))
        per_slot += len(MEM_LEVELS) * math.log10(math.factorial(len(DIMS)))
        per_slot += 2 * math.log10(len(SPLITS)) + math.log10(len(self.gb_kib)) + math.log10(len(self.rf_words))
        total += self.n_slots * per_slot
        for li in range(len(self.layers)):
            for j in range(len(DIMS)):
                b = int(self.bounds[li, j])
                c = tile_candidates(b)
                pairs = sum(1 for rf in c for gb in c if gb <= math.ceil(b / rf))
                total += math.log10(pairs)
        return total

    @property
    def n_knobs(self) -> int:
        return len(self.knobs)

    def knob(self, name: str) -> int:
        """Index of the knob called `name` (e.g. "slot[0].noc", "layer[conv1].chunk")."""
        if not hasattr(self, "_by_name"):
            self._by_name = {k.name: i for i, k in enumerate(self.knobs)}
        return self._by_name[name]

    def choice_index(self, knob: int, value: object) -> int:
        """Index of `value` among knob `knob`'s choices."""
        return self.knobs[knob].choices.index(value)

    @cached_property
    def _candidate_runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (layer, dim)'s candidate list laid end to end, each offset past the previous
        one's largest value, so that one sorted search serves all rows: (offsets [L, 7],
        flat list, index of each list's last real candidate [L, 7])."""
        L, n_dims, width = self.cand.shape
        runs = np.arange(L * n_dims).reshape(L, n_dims)
        key = runs * (int(self.cand.max()) + 1)
        return key, (key[..., None] + self.cand).ravel(), runs * width + self.n_cand - 1

    def next_candidate(self, layer: np.ndarray, value: np.ndarray) -> np.ndarray:
        """[N, 7] the smallest loop-size candidate above `value` [N, 7] for each row's layer
        (the largest candidate where none is above)."""
        key, flat, last = self._candidate_runs
        pos = np.minimum(np.searchsorted(flat, key[layer] + value, side="right"), last[layer])
        return flat[pos] - key[layer]

    def random_choices(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` uniformly random choice vectors (every vector decodes to a design)."""
        return (rng.random((n, self.n_knobs)) * self.n_choices).astype(np.int64)

    @staticmethod
    def split_words(total: np.ndarray, split_index: np.ndarray) -> np.ndarray:
        """(W, I, O) words of a buffer of `total` words split as SPLITS[split_index]."""
        eighths = np.asarray(SPLITS, dtype=np.int64)[split_index]
        return np.maximum(total[..., None] * eighths // 8, 1)


TENSOR_INDEX = {t: i for i, t in enumerate(TENSORS)}
