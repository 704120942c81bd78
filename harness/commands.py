"""The CLI commands. Each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from tabulate import tabulate

from harness import distributed, registry
from harness.config import parse_overrides
from harness.errors import HarnessError

log = logging.getLogger("harness")


def _spec(args: argparse.Namespace):
    from harness.models import resolve

    return resolve(args.model, parse_overrides(args.overrides), args.lm_path, getattr(args, "checkpoint", None))


def _task(args: argparse.Namespace):
    from harness.config import replace_fields

    task = registry.TASKS.get(args.task)
    overrides = parse_overrides(args.task_overrides)
    if not overrides:
        return task
    fields = {k: v for k, v in overrides.items() if k in task.__dataclass_fields__}
    options = {k: v for k, v in overrides.items() if k not in fields}
    if options and task.kind != "naming":
        raise HarnessError(f"--task-set: task {task.name} has no field '{sorted(options)[0]}'")
    if options:
        fields["options"] = {**task.options, **options}
    return replace_fields(task, fields, f"--task-set for task '{task.name}'")


def _shots(text: str | None, task=None) -> list[int]:
    """Shot counts; for a naming task a shot count is Frozen's inner_shots (support images per class)."""
    if text is None:
        return [int(task.options.get("inner_shots", 1))] if task is not None and task.kind == "naming" else [0]
    try:
        shots = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise HarnessError(f"--shots expects comma-separated whole numbers, got '{text}'") from None
    if not shots or min(shots) < 0:
        raise HarnessError(f"--shots expects whole numbers >= 0, got '{text}'")
    if task is not None and task.kind == "naming" and min(shots) < 1:
        raise HarnessError(f"task {task.name}: naming needs at least 1 inner shot, got --shots {text}")
    return shots


def _conditions(choice: str, recipe_default: str) -> list[str]:
    return {"both": ["real", "black"], "recipe": [recipe_default]}.get(choice, [choice])


def _check_eval_args(args: argparse.Namespace, task) -> None:
    """Bad evaluation options fail now, not after loading or training the model."""
    from harness.evaluate import EvalSettings

    _shots(args.shots, task)
    EvalSettings(batch_size=args.batch_size, limit=args.limit)


def _evaluate_and_print(model, spec, task, args: argparse.Namespace) -> None:
    from harness.config import replace_fields
    from harness.evaluate import EvalSettings, evaluate

    table = []
    for shots in _shots(args.shots, task):
        run_task, support_shots = task, shots
        if task.kind == "naming":
            options = {**task.options, "inner_shots": shots}
            run_task, support_shots = replace_fields(task, {"options": options}, f"task {task.name}"), 0
        for images in _conditions(args.images, spec.eval_images):
            settings = EvalSettings(shots=support_shots, seed=args.seed, images=images, batch_size=args.batch_size,
                                    limit=args.limit, skip_bad_samples=args.skip_bad_samples)  # fmt: skip
            m = evaluate(model, spec, run_task, settings, progress=not args.quiet)
            low, high = m["ci95"]
            label = "real images" if images == "real" else "images blacked out"
            partial = (" (partial)" if m.get("partial") else "") + (f" ({m['skipped']} skipped)" if m.get("skipped") else "")
            row = [spec.name, label, task.name, shots, f"{m['n']}{partial}", f"{m['score']:.2f}", f"[{low:.1f}, {high:.1f}]"]
            row += [f"{v:.2f}" for v in m["breakdown"].values()]
            table.append(row)
            log.info("run record: %s", m["run_dir"])
    headers = ["model", "images", "task", "shots", "n", m["metric"], "95% CI", *m["breakdown"]]
    if distributed.is_main():
        print(tabulate(table, headers=headers, tablefmt="github"))


def _device_map(args: argparse.Namespace, spec) -> str | dict | None:
    """--lm-device-map: an accelerate strategy name, a JSON object, or a .json file of one."""
    import json

    value = args.lm_device_map
    if value is None:
        return None
    if spec.external:
        raise HarnessError(f"--lm-device-map is for the harness's own <lm>-<recipe> models, not {spec.name}")
    if spec.recipe.train_lm:
        raise HarnessError(f"--lm-device-map: {spec.name} trains its LM; a split LM is for frozen LMs only")
    if distributed.enabled():
        raise HarnessError("--lm-device-map splits one LM over this process's devices: launch one process, not torchrun")
    if value in ("auto", "balanced", "balanced_low_0", "sequential"):
        return value
    text, where = value, "--lm-device-map"
    if not value.lstrip().startswith(("{", "[")):
        path = Path(value)
        if not path.is_file():
            raise HarnessError(f"--lm-device-map {value}: not auto/balanced/balanced_low_0/sequential, JSON or a file")
        text, where = path.read_text(encoding="utf-8", errors="replace"), str(path)
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as err:
        raise HarnessError(f"{where}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, (int, str)) for v in mapping.values()):
        raise HarnessError(f"{where}: expected a JSON object of module name -> device (a GPU index, 'cpu' or 'disk')")
    return mapping


def cmd_run(args: argparse.Namespace) -> int:
    from harness.train import ready

    t0 = time.perf_counter()
    task = _task(args)
    _check_eval_args(args, task)
    spec = _spec(args)
    model, spec = ready(spec, args.device, not args.quiet, _device_map(args, spec))
    _evaluate_and_print(model, spec, task, args)
    log.info("done in %.1f s", time.perf_counter() - t0)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from harness.train import train

    spec = _spec(args)
    if spec.external or spec.weights:
        raise HarnessError(f"{spec.name} was trained elsewhere: evaluate it with `harness run` or `harness eval`")
    train(spec, progress=not args.quiet, device=args.device)
    print(spec.checkpoint_dir)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.train import ready

    task = _task(args)
    _check_eval_args(args, task)
    spec = _spec(args)
    model, spec = ready(spec, args.device, not args.quiet, _device_map(args, spec), train_missing=False)
    _evaluate_and_print(model, spec, task, args)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from harness import tasks
    from harness.fewshot import draw_support
    from harness.prompt import describe

    task = _task(args)
    dataset = tasks.load(task)
    pool = tasks.support_pool(task, dataset) if args.shots else []
    for row in tasks.rows(task, dataset, args.seed)[: args.n]:
        support = draw_support(task.name, args.seed, row, pool, args.shots)
        print(f"--- {row.id} (answer: {' | '.join(sorted(set(row.answers)))})")
        print(describe(tasks.build_prompt(task, dataset, row, support)))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from harness.data import offline

    print(offline.build(args.name, force=args.force))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.sweep import run_grid

    cells = run_grid(Path(args.grid), device=args.device, progress=not args.quiet)
    print(f"{args.grid}: {cells} cells done; see `harness table` and `harness compare`")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.evaluate import rescore

    for folder in args.run_dir:
        old, new = rescore(Path(folder))
        change = "unchanged" if old["score"] == new["score"] else f"{old['score']} -> {new['score']}"
        print(f"{folder}: {new['metric']} {change}")
    return 0


def _results_frame(pattern: str = "*"):
    import fnmatch

    from harness.results import ResultsDB

    db = ResultsDB()
    frame = db.frame()
    db.close()
    if frame.empty:
        return frame
    # The pattern matches the task's name, or its label with a naming setting ("emoji-open 5-way").
    keep = [fnmatch.fnmatchcase(t, pattern) or fnmatch.fnmatchcase(n, pattern) for t, n in zip(frame["task"], frame["task_name"])]
    return frame[keep]


def cmd_table(args: argparse.Namespace) -> int:
    from harness import tables
    from harness.published import load_published

    published = None if args.no_published else load_published()
    _print_table(tables.comparison(_results_frame(args.task), published), args.format)
    print("mean ± std over seeds (n = seeds); * = partial (--limit); published rows are the papers' own settings")
    return 0


def _print_table(table, fmt: str) -> None:
    if fmt == "csv":
        print(table.to_csv(), end="")
    else:
        print(tabulate(table, headers="keys", tablefmt="github" if fmt == "md" else "latex"))


def cmd_compare(args: argparse.Namespace) -> int:
    from harness import tables

    _print_table(tables.compare(_results_frame(args.task), args.baseline), args.format)
    print("Δ in points (other - baseline) over the same seed and sample pairs, paired bootstrap 95% CI; "
          "* = the interval excludes zero")  # fmt: skip
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.plots import plot_all

    for path in plot_all(_results_frame(args.task), Path(args.out)):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.report import build

    print(build(_results_frame(args.task), Path(args.out), args.baseline, args.samples))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness import paths, tables

    board = tables.leaderboard(_results_frame())
    paths.atomic_write_text(Path(args.csv), board.to_csv(index=False))
    print(f"{args.csv}: {len(board)} rows")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.models.lms import availability

    what, pattern = args.what, args.pattern
    if what == "lms":
        rows = [
            [k, s.source, s.hub_id or s.gguf_file, s.params, availability(s)]
            for k in registry.LMS.names(pattern)
            for s in [registry.LMS.get(k)]
        ]
        headers = ["lm", "source", "hub id / file", "params", "available here"]
    elif what == "encoders":
        rows = [[k, e.timm_name, e.weights, e.note] for k in registry.ENCODERS.names(pattern) for e in [registry.ENCODERS.get(k)]]
        headers = ["encoder", "timm model", "weights", "note"]
    elif what == "recipes":
        rows = [
            [k, r.description, r.lr, r.steps, r.batch_size, r.image_size, r.n_prefix, r.train_data]
            for k in registry.RECIPES.names(pattern)
            for r in [registry.RECIPES.get(k)]
        ]
        headers = ["recipe", "what trains", "lr", "steps", "batch", "image px", "n_prefix", "train data"]
    elif what == "tasks":
        from harness.data import sources

        known = sources()
        rows = []
        for k in registry.TASKS.names(pattern):
            t = registry.TASKS.get(k)
            present = known[t.source].available() if t.source in known else f"no: unknown source '{t.source}'"
            rows.append([k, t.kind, t.source, t.split, t.subsample or "all", t.version, present])
        headers = ["task", "kind", "source", "split", "rows", "version", "data here"]
    else:
        rows = []
        for name in registry.model_names(pattern):
            parsed = registry.parse_model_name(name)
            canonical = f"{parsed.lm.key}-{parsed.recipe.name}"
            note = availability(parsed.lm) if canonical == name else f"alias of {canonical}"
            rows.append([name, parsed.lm.key, parsed.recipe.name, note])
        headers = ["model", "lm", "recipe", "available here"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench import cmd_bench as run

    return run(args)


def cmd_check(args: argparse.Namespace) -> int:
    from harness.check import cmd_check as check

    return check(args)
