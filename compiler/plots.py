"""Figures people would rather look at than read: how a DAS run converged, and how DAS compares
with random search across models.

SVG, written with matplotlib's non-interactive Agg backend, with a fixed id salt and no date so
that the same inputs and seed give the same bytes (DESIGN.md) on one installation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from dnac.compiler.naming import printable

_RC = {"svg.hashsalt": "dnac", "svg.fonttype": "none", "figure.dpi": 100, "font.size": 9}

#: What the objective values mean on each axis label.
OBJECTIVE_LABEL = {
    "fps": "cycles per frame",
    "latency": "latency (cycles)",
    "edp": "EDP (J x cycles)",
    "energy": "energy (pJ)",
}


def plain(text: str) -> str:
    """Text from input as matplotlib shows it literally and SVG (XML 1.0) can hold: `$` escaped
    so that mathtext never parses it, control characters and line separators as escapes."""
    return printable(text).replace("$", r"\$")


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": "dnac"}, bbox_inches="tight")
    plt.close(fig)


def das_history(history: Sequence[dict[str, float]], objective: str, title: str, path: Path) -> None:
    """Best and median sampled objective per step (log scale) and the feasible share of each
    step's batch: whether the search converged, and how fast it left infeasible designs."""
    steps = [h["step"] for h in history]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.0, 3.4))
        ax.plot(steps, [h["median"] for h in history], color="tab:gray", label="median of the step's designs")
        ax.plot(steps, [h["best"] for h in history], color="tab:blue", linewidth=2, label="best feasible so far")
        ax.set_yscale("log")
        ax.set_xlabel("DAS step")
        ax.set_ylabel(f"{OBJECTIVE_LABEL.get(objective, objective)} (lower is better)")
        share = ax.twinx()
        share.plot(steps, [h["feasible"] for h in history], color="tab:green", linestyle=":",
                   label="feasible share")
        share.set_ylim(0, 1.05)
        share.set_ylabel("feasible share of the batch")
        lines = ax.get_lines() + share.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=3, fontsize=8, frameon=False)
        ax.set_title(plain(title))
        _save(fig, path)


def das_bench(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """`dnac bench das` as bars: how much better DAS is than random search with the same budget
    and than the best of the large pool (1 = equal), one group per target and model."""
    labels = [f"{r['model']}\n{r['target']}" for r in rows]
    x = range(len(rows))
    width = 0.38
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows)), 3.4))
        ax.bar([i - width / 2 for i in x], [r["gain_vs_equal"] for r in rows], width,
               label="random search, same evaluations", color="tab:blue")
        ax.bar([i + width / 2 for i in x], [r["gain_vs_pool"] for r in rows], width,
               label=f"best of {rows[0]['pool_size']:,} random designs", color="tab:orange")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(list(x), labels, fontsize=8)
        ax.set_ylabel("baseline objective / DAS objective")
        ax.set_title("DAS against random search (> 1: DAS better)")
        ax.legend(fontsize=8)
        _save(fig, path)


def map_bench(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """`dnac bench map` as bars: each other mapper's EDP over dnac's (1 = equal, > 1: dnac better;
    the exhaustive optimum's bar is at most 1), one group per architecture and layer."""
    series = [("random_x10", "dnac random mapper, 10x the evaluations", "tab:gray"),
              ("loma", "ZigZag LOMA", "tab:orange"), ("optimum_ratio", "exhaustive optimum", "tab:green")]
    vals = {key: [r.get(key) if isinstance(r.get(key), float) else float("nan") for r in rows] for key, _, _ in series}
    shown = [s for s in series if any(not math.isnan(v) for v in vals[s[0]])]
    labels = [f"{plain(str(r['layer']))}\n{plain(str(r['arch']))}" for r in rows]
    width = 0.8 / max(1, len(shown))
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(rows)), 3.6))
        for k, (key, label, color) in enumerate(shown):
            ax.bar([i - 0.4 + width * (k + 0.5) for i in range(len(rows))], vals[key], width, label=label, color=color)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(list(range(len(rows))), labels, fontsize=6, rotation=60, ha="right")
        ax.set_ylabel("EDP / dnac map's EDP")
        ax.set_title("dnac map against other mappers, every mapping priced by the same exact model (> 1: dnac better)",
                     fontsize=8)
        ax.legend(fontsize=7)
        _save(fig, path)


def cosearch_curves(epochs: Sequence[dict[str, Any]], layers: Sequence[Sequence[str]], path: Path) -> None:
    """A co-search at a glance: the supernet's accuracy per epoch, the hardware cost of the
    network the architecture parameters would derive at that epoch, and the final operator
    probabilities alpha of every searchable layer (a DNA / TRIPS search's three questions: is it
    learning, is the hardware getting cheaper, has it decided)."""
    x = [e["epoch"] + 1 for e in epochs]
    with plt.rc_context(_RC):
        fig, (acc, hw, alpha) = plt.subplots(1, 3, figsize=(12.0, 3.6), layout="constrained",
                                             gridspec_kw={"width_ratios": [1, 1, 1.3]})
        acc.plot(x, [e["train_acc"] for e in epochs], marker="o", label="weights (train half)")
        searched = [(xi, e["arch_acc"]) for xi, e in zip(x, epochs, strict=True) if e["arch_acc"] is not None]
        if searched:
            acc.plot(*zip(*searched, strict=True), marker="s", label="architecture (held-out half)")
        acc.set_xlabel("epoch")
        acc.set_ylabel("top-1 of the sampled paths")
        acc.legend(fontsize=8)
        costs = [(xi, e["hw_cost"]) for xi, e in zip(x, epochs, strict=True) if e["hw_cost"]]
        if costs:
            metric = next(iter(costs[0][1]))
            hw.plot([c[0] for c in costs], [c[1][metric] for c in costs], marker="o", color="tab:red")
            hw.set_ylabel(f"derived network's {metric}")
        hw.set_xlabel("epoch")
        for ax in (acc, hw):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        hw.set_title("hardware cost (lower is better)")
        last = epochs[-1]["alpha"] if epochs else []
        width = max((len(c) for c in layers), default=1)
        grid = [[row[k] if k < len(row) else float("nan") for k in range(width)] for row in last]
        if grid:
            im = alpha.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
            fig.colorbar(im, ax=alpha, fraction=0.05)
            names = max(layers, key=len) if layers else []
            alpha.set_xticks(range(len(names)), [plain(n) for n in names], rotation=60, ha="right", fontsize=7)
            alpha.set_yticks(range(len(grid)), [str(i) for i in range(len(grid))], fontsize=7)
            alpha.set_ylabel("searchable layer")
        alpha.set_title("final operator probabilities (alpha)")
        _save(fig, path)
