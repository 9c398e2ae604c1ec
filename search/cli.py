"""The `dnac search`, `dnac train` and `dnac bench search` commands (click).

Importing this module imports neither torch nor the rest of dnac.search (every command imports
what it needs when it runs), so registering the commands keeps `dnac --help` and `dnac
inspect` fast.

`dnac.compiler.cli` registers them on its group, so user errors follow the one contract there:
one line `dnac: error: <file>: <field>: <reason>` and exit status 2.  Under `torchrun` (WORLD_SIZE
> 1) `search` runs data-parallel; rank 0 alone prints and writes.
"""

from __future__ import annotations

import json
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

DEFAULT_ROOT = Path("hw_out")


def safe_segment(name: str) -> str:
    """A name from an input file as one safe path segment."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    return s[:80]


@click.command("search")
@click.argument("config")
@click.option("--dataset", default=None, help="Dataset (fashion-mnist, mnist, digits, cifar10, cifar100, imagefolder, synthetic).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False), help="Folder with the dataset's files.")
@click.option("--target", default=None, help="Hardware target (zc706, asic, asic_45nm, asic_32nm).")
@click.option("--objective", default=None, help="fps or latency (FPGA); edp, latency or energy (ASIC).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Search epochs.")
@click.option("--limit-batches", type=click.IntRange(min=1), default=None, help="Cap on batches per epoch and split.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default hw_out/search-<name>).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the config's).")
@click.option("--resume", is_flag=True, help="Continue from <out>/checkpoint.pt.")
@click.option("--force", is_flag=True, help="Write into an existing --out that dnac did not write.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
def search(config: str, dataset: str | None, data_dir: str | None, target: str | None, objective: str | None,
           epochs: int | None, limit_batches: int | None, out: str | None, seed: int | None, resume: bool,
           force: bool, progress: bool | None) -> None:
    """Co-search network, precision and accelerator (DNA / TRIPS).

    CONFIG is a YAML file or a preset (cifar10, cifar10-dna, fashion-mnist, tiny).  Writes
    checkpoint.pt and search_log.json every epoch, then model.yaml (the derived network),
    design.yaml, report.json, search_log.json and search.svg together into --out.
    """
    from dnac.compiler.output import exclusive
    from dnac.search.config import load_config, with_overrides
    from dnac.search.cosearch import CoSearch
    from dnac.search.distributed import init_from_env

    cfg = with_overrides(load_config(config), dataset=dataset, data_dir=data_dir, target=target, objective=objective,
                         epochs=epochs, limit_batches=limit_batches, seed=seed)
    folder = Path(out) if out else DEFAULT_ROOT / f"search-{safe_segment(cfg.name)}"
    ctx, device = init_from_env()
    say = (lambda s: click.echo(s, err=True)) if ctx.is_main else (lambda s: None)
    with exclusive(folder) if ctx.is_main else nullcontext():  # rank 0 alone writes
        created = _claim(folder, force) if ctx.is_main else False
        try:
            result = CoSearch(cfg, folder, dist=ctx, device=device, progress=progress, printer=say).run(resume=resume)
        except BaseException:
            if created:  # a search that failed before it saved anything leaves no folder behind
                _remove_if_unused(folder)
            raise
    if ctx.is_main and result is not None:
        r = result.report
        click.echo(f"network: {' '.join(result.genotype.describe())}")
        click.echo(f"{r['target']}: {r['fps']:.1f} FPS, {r['latency_ms']:.3f} ms latency, "
                   f"supernet top-1 {r['cosearch']['supernet_top1']:.3f}")
        click.echo(f"wrote {folder}/model.yaml, design.yaml, report.json, search_log.json, search.svg")


def _claim(folder: Path, force: bool) -> bool:
    """Make `folder` the search's output before any work starts, as `dnac build` guards its own:
    a non-empty folder without dnac's marker (a user's files, a mistyped --out) is refused
    unless `force`; the folder must be writable; the marker goes in; what runs killed earlier
    left (temporary files and folders) goes.  Returns whether the folder was created here."""
    from dnac.compiler.errors import OutputError
    from dnac.compiler.output import MARKER, MARKER_TEXT, preflight, sweep, sweep_files

    try:
        sweep(folder)
        preflight(folder, force=force)  # dnac's own, empty or forced; writable; room on the disk
        sweep_files(folder)
    except OSError as exc:
        raise OutputError(str(folder), "--out", f"cannot write there: {exc.strerror or exc}") from None
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    except OSError as exc:
        if created:
            _remove_if_unused(folder)
        raise OutputError(str(folder), "--out", f"cannot write there: {exc.strerror or exc}") from None
    return created


def _check_writable(folder: Path) -> None:
    """`dnac train` writes its three files beside the model: the folder must take them."""
    from dnac.compiler.errors import OutputError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".dnac_write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(str(folder), "--out", f"cannot write there: {exc.strerror or exc}") from None


def _remove_if_unused(folder: Path) -> None:
    """Remove `folder` if it holds nothing but dnac's marker."""
    from dnac.compiler.output import MARKER

    try:
        if {p.name for p in folder.iterdir()} <= {MARKER}:
            (folder / MARKER).unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass


def _train_config(model: str, config: str | None) -> tuple[str, Any, str, str | None, int | None]:
    """(config name, train settings, dataset, data_dir, limit_batches) for `dnac train`: --config,
    else the config a search recorded beside the model, else the fashion-mnist preset."""
    from dnac.search.config import load_config, presets

    name = config
    if name is None:
        report = Path(model).parent / "report.json"
        if Path(model).is_file() and report.is_file():
            try:
                name = json.loads(report.read_text(encoding="utf-8")).get("cosearch", {}).get("config_source")
            except (OSError, ValueError):
                name = None
        if name is not None and name.startswith("preset:"):
            name = name.split(":", 1)[1]
        if name is None or (name not in presets() and not Path(name).is_file()):
            name = "fashion-mnist"
    cfg = load_config(name)
    return name, cfg.train, cfg.data.dataset, cfg.data.data_dir, cfg.data.limit_batches


@click.command("train")
@click.argument("model")
@click.option("--config", default=None, help="Preset or YAML whose `train:` and `data:` settings to use.")
@click.option("--dataset", default=None, help="Dataset (default: the config's).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False), help="Folder with the dataset's files.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs.")
@click.option("--limit-batches", type=click.IntRange(min=1), default=None, help="Cap on batches per epoch.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Folder for weights and scales (default: beside MODEL).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the weights' "
              "initialization and the batch order.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
def train(model: str, config: str | None, dataset: str | None, data_dir: str | None, epochs: int | None,
          limit_batches: int | None, out: str | None, seed: int, progress: bool | None) -> None:
    """Train MODEL from scratch at its bit widths (quantization-aware) and report top-1.

    MODEL is a model.yaml (e.g. the one `dnac search` derived), a design.yaml or a zoo name.
    Saves <name>.weights.pt, <name>.quant.json and <name>.train.json beside the model (or in --out).
    """
    from dataclasses import replace

    from dnac.compiler.frontend import load_model
    from dnac.compiler.naming import printable
    from dnac.search import data as datasets
    from dnac.search.train import check_fit
    from dnac.search.train import train as run_train

    w = load_model(model).workload
    cfg_name, tcfg, ds, ddir, limit = _train_config(model, config)
    if epochs is not None:
        tcfg = replace(tcfg, epochs=epochs)
    splits = datasets.load(dataset or ds, data_dir or ddir, seed=seed)
    check_fit(w, splits, model, tcfg.batch_size, cfg_name)
    if Path(model).is_file():
        folder, stem = (Path(out) if out else Path(model).parent), safe_segment(Path(model).stem)
    else:
        folder, stem = (Path(out) if out else DEFAULT_ROOT / f"{safe_segment(w.name)}-train"), safe_segment(w.name)
    _check_writable(folder)
    res = run_train(w, tcfg, splits, seed=seed, limit_batches=limit_batches if limit_batches is not None else limit,
                    out=folder, stem=stem, progress=progress, printer=lambda s: click.echo(s, err=True),
                    data_dir=data_dir or ddir)
    click.echo(f"{printable(w.name)} on {splits.name}: top-1 {res.top1:.4f} after {res.epochs} epochs ({res.seconds:.1f} s), "
               f"{res.integer_top1:.4f} as integers")
    click.echo(f"wrote {res.files['weights']}, {res.files['quant']}, {res.files['report']}")


@click.command("search", help="Co-search benchmarks: memory of precision sampling, penalty overhead, co-search quality.")
@click.option("--config", "config_name", default="fashion-mnist", show_default=True,
              help="Preset or YAML for the overhead and quality runs.")
@click.option("--only", type=click.Choice(["memory", "overhead", "quality"]), multiple=True,
              help="Run only these parts (repeatable; default all).")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Search epochs (default: the config's).")
@click.option("--limit-batches", type=click.IntRange(min=1), default=None, help="Batches per search epoch.")
@click.option("--train-epochs", type=click.IntRange(min=1), default=None, help="Training epochs of the quality part.")
@click.option("--train-limit", type=click.IntRange(min=1), default=None, help="Batches per training epoch.")
@click.option("--memory-space", type=click.Choice(["fbnet-cifar", "config"]), default="fbnet-cifar", show_default=True,
              help="Supernet of the memory part: FBNet on 3x32x32 (22 layers) or the config's space.")
@click.option("--memory-batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--data-dir", default=None, type=click.Path(file_okay=False))
@click.option("--out", default="hw_out/bench-search", show_default=True, type=click.Path(file_okay=False))
@click.option("--progress/--no-progress", default=None)
def bench_search(config_name: str, only: tuple[str, ...], epochs: int | None, limit_batches: int | None,
                 train_epochs: int | None, train_limit: int | None, memory_space: str, memory_batch: int,
                 data_dir: str | None, out: str, progress: bool | None) -> None:
    """Co-search benchmarks: memory of precision sampling, penalty overhead, co-search quality."""
    from dnac.search.bench import run_bench

    text, path = run_bench(Path(out), config_name=config_name, parts=only, epochs=epochs, limit_batches=limit_batches,
                           train_epochs=train_epochs, train_limit=train_limit, memory_space=memory_space,
                           memory_batch=memory_batch, data_dir=data_dir, progress=progress)
    click.echo(text)
    click.echo(f"\nwrote {path}")


__all__ = ["bench_search", "search", "train"]
