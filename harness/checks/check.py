"""Regression checks on small fixed cells: ``harness check --baseline FILE [--update]``.

A baseline file names a few cells (task, model, shots, seed, limit, images, recipe overrides) and the
score each gave when the file was last written with ``--update``, with its 95% CI. ``check`` runs
every cell through the ordinary path (train or load the model, ``evaluate``), so the runs are recorded
like any other and a killed check resumes; it prints one table row per cell and exits 1 when a
score fell further than its cell allows.

Training and evaluation on the CPU are deterministic (seeded data order, seeded initialisation, greedy
decoding), so on one machine a check gives bit-identical predictions run after run. The thread count
changes the floats (a sum splits by threads), so the check pins torch's CPU threads (``threads``,
default 1). So do the CPU's vector instructions: torch, MKL and oneDNN pick AVX-512 kernels where the
CPU has them and AVX2 ones where not, and a few dozen training steps amplify the difference into other
answers (docs/regression-checks.md). A file's ``cpu_kernels`` (avx2 in the shipped ones) pins all three to one instruction set, so x86 CPUs
with and without AVX-512 give the same numbers; a tolerance is left for what no pin covers (another
torch or MKL build, a CPU without the instruction set).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from tabulate import tabulate

from harness import paths, registry
from harness.checks.cpu import CPU_KERNELS, floats_now, floats_of, pin_cpu_kernels, pinned_threads, say
from harness.conditions import LABELS
from harness.config import from_mapping, parse_yaml, read_yaml
from harness.errors import HarnessError
from harness.evaluation import preflight

if TYPE_CHECKING:
    from harness.evaluation.cells import Cell as RunCell

log = logging.getLogger("harness")

# A cell's score may differ from its expected one by this many points, either way, unless the cell
# (or the file) says otherwise: enough for a float difference between machines to flip an answer or
# two in a few dozen queries, not for a real regression.
DEFAULT_TOLERANCE = 1.0
RULES = ("tolerance", "ci")
UPDATE_NOTE = "# expected and ci95 are written by `harness check --update`; only these top comment lines are kept."


@dataclass(frozen=True)
class Cell:
    """One run to check: the settings of a sweep cell, its expected score and how far it may move."""

    task: str
    model: str
    shots: int = 0  # support examples; for a naming task Frozen's inner shots (0: the task's own)
    seed: int = 0
    limit: int = 0  # the first N queries (0: all)
    images: str = "real"  # an image condition (harness.conditions): real, black, shuffled or caption
    set: dict = field(default_factory=dict)  # recipe overrides (part of the model's fingerprint)
    checkpoint: str = ""  # weights trained elsewhere, as `--checkpoint` (relative to the baseline file's folder)
    name: str = ""  # the row's label (default: task, model, images, shots, seed)
    # Absent is NaN or (), not None: config's type check fails on a wrong value for a `float | None` field.
    expected: float = math.nan  # written by --update
    ci95: tuple[float, ...] = ()  # the expected score's 95% CI [low, high], written by --update
    tolerance: float = math.nan  # points either way (absent: the file's `tolerance`)
    rule: str = "tolerance"  # "tolerance", or "ci": stay at or above the stored CI's lower end

    def __post_init__(self) -> None:
        checks = {
            "shots": self.shots >= 0,
            "seed": self.seed >= 0,
            "limit": self.limit >= 0,
            "images": self.images in LABELS,
            "rule": self.rule in RULES,
            "expected": not math.isinf(self.expected),
            "tolerance": not self.tolerance < 0 and not math.isinf(self.tolerance),
            "ci95": not self.ci95 or (len(self.ci95) == 2 and all(map(math.isfinite, self.ci95)) and self.ci95[0] <= self.ci95[1]),
        }  # fmt: skip
        for name, ok in checks.items():
            if not ok:
                hint = f" (one of: {', '.join(RULES)})" if name == "rule" else ""
                hint = " (two numbers, low <= high)" if name == "ci95" else hint
                raise HarnessError(f"invalid {name} = {getattr(self, name)!r}{hint}")
        if self.rule == "ci" and not math.isnan(self.tolerance):
            raise HarnessError("give either a tolerance or rule: ci, not both")

    @property
    def has_expected(self) -> bool:
        return not math.isnan(self.expected)

    @property
    def label(self) -> str:
        shots = f" {self.shots}-shot" if self.shots else ""
        seed = f" seed {self.seed}" if self.seed else ""
        weights = f"@{Path(self.checkpoint).stem}" if self.checkpoint else ""
        return self.name or f"{self.task} {self.model}{weights} {self.images}{shots}{seed}"


@dataclass(frozen=True)
class Baseline:
    """A baseline file: its cells and the defaults they share."""

    cells: tuple[dict, ...]
    description: str = ""
    tolerance: float = DEFAULT_TOLERANCE  # points either way, for cells that give no rule of their own
    device: str = "cpu"  # where the expected numbers were made; `--device` overrides it
    batch_size: int = 0  # generation batch, 0: by device (answers do not depend on it)
    threads: int = 1  # torch's CPU threads, pinned: float sums, so trained weights and answers, depend on the count
    cpu_kernels: str = ""  # instruction set pinned for torch, MKL and oneDNN (avx2, avx512, default); "": the CPU's
    precision: str = ""  # fp32 or bf16 (harness.precision), pinned like the kernels; "": --precision, else auto

    def __post_init__(self) -> None:
        if not self.cells:
            raise HarnessError("no cells")
        if self.precision and self.precision not in ("fp32", "bf16", "auto"):
            raise HarnessError(f"invalid precision = {self.precision!r} (fp32, bf16, auto, or leave it out)")
        if self.cpu_kernels and self.cpu_kernels not in CPU_KERNELS:
            known = ", ".join(CPU_KERNELS)
            raise HarnessError(f"invalid cpu_kernels = {self.cpu_kernels!r} ({known}, or leave it out)")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise HarnessError(f"invalid tolerance = {self.tolerance!r}")
        for name, least in (("batch_size", 0), ("threads", 1)):
            if getattr(self, name) < least:
                raise HarnessError(f"invalid {name} = {getattr(self, name)!r}")


@contextmanager
def _where(where: str):
    """Name the file and cell in front of any one-line error raised inside."""
    try:
        yield
    except HarnessError as exc:
        raise HarnessError(f"{where}: {exc}") from None


def load(path: Path, need_expected: bool = True) -> tuple[Baseline, list[Cell], dict]:
    """The baseline file, its cells checked field by field, and the raw mapping (for --update)."""
    raw = read_yaml(path)
    baseline = from_mapping(Baseline, raw, str(path))
    cells = [from_mapping(Cell, item, f"{path} cell {i}") for i, item in enumerate(baseline.cells, 1)]
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells, 1):
        if (first := seen.setdefault(cell.label, i)) != i:
            raise HarnessError(f"{path} cell {i}: same label '{cell.label}' as cell {first}; give each a `name`")
        if need_expected and not cell.has_expected:
            raise HarnessError(f"{path} cell {i} ({cell.label}): no expected score; record it with --update")
        if need_expected and cell.rule == "ci" and not cell.ci95:
            raise HarnessError(f"{path} cell {i} ({cell.label}): rule: ci needs a stored ci95; record it with --update")
    return baseline, cells, raw


def plan(path: Path, cells: list[Cell]) -> list[RunCell]:
    """Every cell of the file as a cell to run, each name resolved and each task's data found before
    anything trains."""
    from harness.evaluation import tasks
    from harness.evaluation.cells import Cell as RunCell  # noqa: F811  (the type, at run time)
    from harness.evaluation.evaluate import EvalSettings
    from harness.kinds.base import kind_of
    from harness.models.spec import resolve

    preflight.require(
        [c.task for c in cells],
        [
            preflight.Model(
                c.model,
                c.set,
                checkpoint=str(path.parent / c.checkpoint) if c.checkpoint else None,
                where=f"{path} cell {i}: ",
            )
            for i, c in enumerate(cells, 1)
        ],
    )
    planned = []
    for i, cell in enumerate(cells, 1):
        with _where(f"{path} cell {i}"):
            task = registry.TASKS.get(cell.task)
            spec = resolve(
                cell.model, cell.set, checkpoint=str(path.parent / cell.checkpoint) if cell.checkpoint else None
            )
            kind = kind_of(task)
            shots = kind.grid_shots([cell.shots or kind.default_shots(task)])[0]
            run_task, support = kind.as_run(task, shots)
            tasks.load(run_task)
        planned.append(
            RunCell(spec, run_task, EvalSettings(support, cell.seed, cell.images, 0, cell.limit), cell.label)
        )
    return planned


def run(baseline: Baseline, planned: list[RunCell], device: str, progress: bool, notes: list[str] | None = None,
        precision: str = "auto") -> list:  # fmt: skip
    """Each cell's result in file order (its record, and whether it was read back from a run finished
    before); each model is trained (or loaded) once for all its cells, computing at the file's precision, else
    at ``precision``. ``notes`` gets a line for every model whose checkpoint, and every run read back, was made
    with other CPU kernels or threads than now."""
    from harness.evaluation.cells import run_cells

    planned = [dataclasses.replace(p, settings=dataclasses.replace(p.settings, batch_size=baseline.batch_size))
               for p in planned]  # fmt: skip
    models: list[tuple[Any, Any, list[int]]] = []

    def on_model(spec, model, indices: list[int]) -> None:
        if notes is not None:
            notes.extend(_made_elsewhere(spec, model, planned, indices))
        models.append((spec, floats_now(model), indices))

    results = run_cells(planned, device, progress, on_model=on_model, precision=baseline.precision or precision)
    for _, now, indices in models:
        for i in indices:
            if results[i].read_back and notes is not None:
                env = json.loads((Path(results[i].record.run_dir) / "environment.json").read_text())
                if (made := floats_of(env)) and made != now:
                    notes.append(f"{planned[i].name}: read back from a run made with {say(made)}")
    return results


def _made_elsewhere(spec, model, planned: list[RunCell], indices: list[int]) -> list[str]:
    """A line when the model's checkpoint was trained (in part) with other CPU kernels or threads."""
    from harness.training import checkpoint

    if not spec.trains:
        return []
    now = floats_now(model)
    trained = [floats_of(e) for e in checkpoint.stored_meta(spec.checkpoint_dir).get("trained_with", [])]
    other = sorted({t for t in trained if t and t != now})
    if now is None or not other:
        return []
    cells = ", ".join(planned[i].name for i in indices)
    return [f"{cells}: the checkpoint in {spec.checkpoint_dir} was trained with {'; '.join(map(say, other))}: "
            "delete it, or use a fresh HARNESS_HOME, to compare with the file"]  # fmt: skip


def judge(cell: Cell, default_tolerance: float, now: float) -> tuple[str, str]:
    """(what the cell allows, status): ok, REGRESSED, or improved (above what is allowed)."""
    if not cell.has_expected or (cell.rule == "ci" and not cell.ci95):
        return "", "new"
    if cell.rule == "ci":
        low, high = cell.ci95
        status = "REGRESSED" if now < low else "improved" if now > high else "ok"
        return f"[{low:.2f}, {high:.2f}] (CI)", status
    tolerance = default_tolerance if math.isnan(cell.tolerance) else cell.tolerance
    delta = round(now - cell.expected, 2)
    status = "REGRESSED" if delta < -tolerance - 1e-9 else "improved" if delta > tolerance + 1e-9 else "ok"
    return f"±{tolerance:g}", status


def _table(baseline: Baseline, cells: list[Cell], results: list) -> tuple[str, list[str]]:
    from harness.results.escape import markdown_rows

    rows, statuses = [], []
    for cell, result in zip(cells, results):
        m, old = result.record, result.read_back
        allowed, status = judge(cell, baseline.tolerance, m.score)
        delta = f"{m.score - cell.expected:+.2f}" if cell.has_expected else ""
        expected = f"{cell.expected:.2f}" if cell.has_expected else ""
        partial = f" (first {m.n})" if m.partial else ""
        row = [cell.label, m.metric, f"{m.n}{partial}", expected, f"{m.score:.2f}", delta, allowed, status]
        rows.append([*row, "read back" if old else "run now"])
        statuses.append(status)
    headers = ["cell", "metric", "n", "expected", "now", "delta", "allowed", "status", "run"]
    return tabulate(markdown_rows(rows), headers=headers, tablefmt="github", disable_numparse=True), statuses


def _dump(value: Any, flow: bool | None = None) -> str:
    """YAML text; ``flow=None``: innermost collections inline (``set: {steps: 40}``, ``ci95: [1.0, 5.0]``)."""
    return yaml.safe_dump(value, default_flow_style=flow, sort_keys=False, width=1000, allow_unicode=True).rstrip("\n")


def render(text: str, raw: dict, raw_cells: list[dict]) -> str:
    """The file again with new cells: its top comment lines kept, the rest written from the data."""
    header = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    while header and not header[-1].strip():
        header.pop()
    if not any("--update" in line for line in header):
        header.append(UPDATE_NOTE)
    out = [*header]
    for key, value in raw.items():
        if key != "cells":
            out.append(_dump({key: value}, flow=False))
            continue
        out.append("cells:")
        for cell in raw_cells:
            out.extend("  " + line for line in _dump([cell]).splitlines())
    return "\n".join(out) + "\n"


def update(path: Path, raw: dict, cells: list[Cell], results: list) -> list[str]:
    """Rewrite the file's expected scores and CIs from ``results`` (atomically); lines saying what changed."""
    changes, raw_cells = [], []
    for item, cell, result in zip(raw["cells"], cells, results):
        ci95 = [float(v) for v in result.record.ci95]
        new = {**item, "expected": float(result.record.score), "ci95": ci95}
        old_ci = list(cell.ci95)
        if cell.expected != new["expected"] or old_ci != ci95:
            old = f"{cell.expected:.2f}" if cell.has_expected else "none"
            was = f" {old_ci}" if old_ci else ""
            changes.append(f"{cell.label}: {old}{was} -> {new['expected']:.2f} {ci95}")
        raw_cells.append(new)
    text = path.read_text(encoding="utf-8-sig")
    new_text = render(text, raw, raw_cells)
    from_mapping(Baseline, parse_yaml(new_text, str(path)), str(path))  # what is written reads back
    if new_text != text:
        paths.atomic_write_text(path, new_text)
    return changes


def cmd_check(args: argparse.Namespace) -> int:
    if args.invariance:
        from harness.checks.invariance import cmd_invariance

        return cmd_invariance(args)
    if not args.baseline:
        raise HarnessError("check needs --baseline FILE (a regression check) or --invariance (with --task and --model)")
    path = Path(args.baseline)
    baseline, cells, raw = load(path, need_expected=not args.update)
    device = args.device or baseline.device
    kernels = ""
    if device == "cpu":
        import torch

        pinned = baseline.cpu_kernels
        kernels = pin_cpu_kernels(pinned, str(path)) if pinned else torch.backends.cpu.get_cpu_capability()
    planned = plan(path, cells)
    notes: list[str] = []
    # The file's numbers were made at its precision: the check runs at it, whatever --precision says.
    with pinned_threads(baseline.threads):
        results = run(baseline, planned, device, progress=not args.quiet, notes=notes, precision=args.precision)
    read_back = [r.read_back for r in results]
    table, statuses = _table(baseline, cells, results)
    print(table)
    for line in notes:
        print(f"note: {line}")
    if kernels:
        chosen = "pinned by the file" if baseline.cpu_kernels else "the CPU's own choice"
        print(f"on the CPU with torch's {kernels} kernels ({chosen}), {baseline.threads} thread(s)")
    for chosen, why in dict.fromkeys((r.record.precision, r.record.precision_reason) for r in results):
        if chosen:
            print(f"computed in {chosen} ({'pinned by the file' if baseline.precision else why})")
    if any(read_back):
        print(f"{sum(read_back)} of {len(cells)} cells were read back from runs finished earlier in {paths.home()}: "
              "they show the code that made them; a fresh HARNESS_HOME runs every cell with this code")  # fmt: skip
    if args.update:
        shared = {k: v for k, v in raw.items() if k != "cells"}
        if kernels and not baseline.cpu_kernels and kernels.lower() in CPU_KERNELS:  # record what made the numbers
            shared["cpu_kernels"] = kernels.lower()
        made = {r.record.precision for r in results if r.record.precision}
        if not baseline.precision and len(made) == 1:
            shared["precision"] = made.pop()
        raw = {**shared, "cells": raw["cells"]}
        changes = update(path, raw, cells, results)
        for line in changes:
            print(line)
        print(f"{path}: {len(changes)} of {len(cells)} cells changed" if changes else f"{path}: unchanged")
        return 0
    regressed = statuses.count("REGRESSED")
    if regressed:
        print(f"{path}: {regressed} of {len(cells)} cells REGRESSED")
        return 1
    print(f"{path}: {len(cells)} cells, none regressed ({statuses.count('improved')} improved)")
    return 0
