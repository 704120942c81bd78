"""The CLI commands. Each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from tabulate import tabulate

from harness import conditions, distributed, registry
from harness.config import parse_overrides
from harness.errors import HarnessError, unknown_name
from harness.evaluation import preflight

log = logging.getLogger("harness")


def _spec(args: argparse.Namespace):
    from harness.models.spec import resolve

    return resolve(
        args.model, parse_overrides(args.overrides), getattr(args, "lm_path", None), getattr(args, "checkpoint", None)
    )


def _task(args: argparse.Namespace):
    from harness.evaluation import tasks

    return tasks.resolve(args.task, parse_overrides(args.task_overrides))


def _shots(text: str | None, task) -> list[int]:
    """Shot counts as the task's kind means them (a naming task's are Frozen's inner shots); none given: the
    kind's default."""
    from harness.kinds.base import kind_of

    kind = kind_of(task)
    if text is None:
        return [kind.default_shots(task)]
    try:
        shots = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise HarnessError(f"--shots expects comma-separated whole numbers, got '{text}'") from None
    kind.check_shots(task, shots, "--shots")
    return shots


def _print_results(results: list, train_seeds: bool = False) -> None:
    """One row per cell; with ``train_seeds``, the training seed of each row's model in a column of its own. No CI
    over too few items, and a note where a corpus metric (CIDEr) was computed over too few images to mean anything."""
    from harness.metrics import stats

    table = []
    for result in results:
        m = result.record
        low, high = m.ci95
        label = conditions.label(m.images)
        partial = (" (partial)" if m.partial else "") + (f" ({m.skipped} skipped)" if m.skipped else "")
        score = f"{m.score:.2f}" + (" (all answers empty)" if m.all_empty else "")
        task = m.task + (" (dev)" if m.split == "dev" else "")
        ci = f"[{low:.1f}, {high:.1f}]" if stats.ci_shown(m.n) else stats.NO_CI
        row = [m.model, *([m.train_seed] if train_seeds else []), label, task, m.shots, f"{m.n}{partial}", score,
               ci]  # fmt: skip
        row += [f"{v:.2f}" for v in m.breakdown.values()]
        table.append(row)
        log.info("run record: %s", m.run_dir)
    last = results[-1].record
    seed_column = ["train seed"] if train_seeds else []
    headers = ["model", *seed_column, "images", "task", "shots", "n", last.metric, "95% CI", *last.breakdown]
    if distributed.is_main():
        from harness.results.escape import markdown_rows

        print(tabulate(markdown_rows(table), headers=headers, tablefmt="github"))
        for chosen, why in dict.fromkeys((r.record.precision, r.record.precision_reason) for r in results):
            if chosen:
                print(f"computed in {chosen} ({why})")
        if not all(stats.ci_shown(r.record.n) for r in results):
            print(stats.NO_CI_WHY)
        corpus = [stats.corpus_note(r.record.metric, r.record.n, f"{r.record.model}, {r.record.label}")
                  for r in results if r.record.corpus]  # fmt: skip
        for note in dict.fromkeys(note for note in corpus if note):
            print(note)


def _train_seeds(value, overrides: dict, where: str = "--train-seeds") -> tuple[int, ...]:
    """Training seeds as asked for, refused beside a `seed` recipe override (both would set the training seed)."""
    from harness.evaluation.cells import train_seed_option

    seeds = train_seed_option(value, where)
    if seeds and "seed" in overrides:
        raise HarnessError(f"{where} and a `seed` recipe override both set the training seed: give one of them")
    return seeds


def _evaluate(args: argparse.Namespace, train_missing: bool) -> None:
    from harness.evaluation import tasks
    from harness.evaluation.cells import expand, run_cells
    from harness.evaluation.evaluate import EvalSettings, limit_option
    from harness.models.loading import device_map

    task = _task(args)
    shots = _shots(args.shots, task)  # bad options fail now, before the model is looked for
    images = conditions.parse(args.images, recipe_default=None)
    base = EvalSettings(batch_size=args.batch_size, limit=limit_option(args.limit),
                        skip_bad_samples=args.skip_bad_samples, split=tasks.split_option(args.split))  # fmt: skip
    train_seeds = _train_seeds(getattr(args, "train_seeds", None), parse_overrides(args.overrides))
    preflight.require([task], [preflight.model_of(args)])  # all that is missing, in one message, before any work
    tasks.check_split(task, base.split)
    spec = _spec(args)
    lm_map = device_map(args.lm_device_map, spec)
    cells = expand(spec, task, shots, [args.seed], conditions.with_recipe(images, spec.eval_images), base, train_seeds)
    results = run_cells(cells, args.device, not args.quiet, lm_map, train_missing, precision=args.precision)
    _print_results(results, train_seeds=bool(train_seeds))


def cmd_run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    _evaluate(args, train_missing=True)
    log.info("done in %.1f s", time.perf_counter() - t0)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from harness.training.train import train

    preflight.require([], [preflight.model_of(args)])
    spec = _spec(args)
    if not spec.trains:
        raise HarnessError(f"{spec.name} was trained elsewhere: evaluate it with `harness run` or `harness eval`")
    train(spec, progress=not args.quiet, device=args.device, precision=args.precision)
    print(spec.checkpoint_dir)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    _evaluate(args, train_missing=False)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from harness.evaluation import tasks
    from harness.evaluation.fewshot import draw_support
    from harness.kinds.base import kind_of
    from harness.prompt import describe

    if args.n < 1:
        raise HarnessError(f"--n expects how many queries to show (1 or more), got {args.n}")
    if args.recipe:
        if args.train or args.model or args.task:
            raise HarnessError("show --recipe M stands alone (no --train, --model or --task)")
        from harness.models import groups

        print(groups.show(args.recipe, parse_overrides(args.overrides)))
        return 0
    if args.train or args.model:
        return _show_train(args)
    if not args.task:
        raise HarnessError("show needs --task T (a task's prompts) or --train --model M (a model's training data)")
    task = _task(args)
    kind = kind_of(task)
    shots = args.shots or kind.default_shots(task)  # a naming task's are its inner shots
    kind.check_shots(task, [shots], "--shots")
    task, support_shots = kind.as_run(tasks.for_split(task, tasks.split_option(args.split)), shots)
    dataset = tasks.load(task)
    pool = tasks.support_pool(task, dataset) if support_shots else []
    for row in tasks.rows(task, dataset, args.seed)[: args.n]:
        support = draw_support(task.name, args.seed, row, pool, support_shots)
        print(f"--- {row.id} (answer: {' | '.join(sorted(set(row.answers)))})")
        print(describe(tasks.build_prompt(task, dataset, row, support)))
    return 0


def _show_train(args: argparse.Namespace) -> int:
    """The first training sequences of a model's recipe as the model sees them (no weights loaded)."""
    from harness.training.trainset import TrainSet, render

    if not (args.train and args.model) or args.task:
        raise HarnessError("show --train needs --model M (and no --task)")
    spec = _spec(args)
    if not spec.trains:
        raise HarnessError(f"{spec.name} was not trained by this harness: it has no training data to show")
    recipe = spec.recipe
    black = " (images blacked out)" if recipe.train_images == "black" else ""
    print(f"{spec.name}: {recipe.pairs} image(s) per sequence{black}; «…» is what the loss counts")
    for i, sequence in enumerate(TrainSet(recipe).sequences(args.n)):
        print(f"--- {i + 1}: {sequence[0].source}")
        print(render(sequence, recipe, bos=spec.lm.spec.add_bos))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from harness.data import offline
    from harness.data.sources import SOURCES

    own = {
        name: source.build for name, source in SOURCES.items.items() if source.build
    }  # sources that build themselves
    if args.name not in own and args.name not in offline._BUILDERS:
        raise unknown_name("offline data source", args.name, [*offline._BUILDERS, *own])
    print(own[args.name](args.force) if args.name in own else offline.build(args.name, force=args.force))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.evaluation.sweep import grid_path, run_grid

    cells = run_grid(grid_path(args.grid), device=args.device, progress=not args.quiet, precision=args.precision,
                     split=args.split, train_seeds=args.train_seeds)  # fmt: skip
    print(f"{args.grid}: {cells} cells done; see `harness table` and `harness compare`")
    return 0


def cmd_score(args: argparse.Namespace) -> int:

    from harness.evaluation.rescore import rescore

    for folder in args.run_dir:
        old, new = rescore(Path(folder))
        change = "unchanged" if old.score == new.score else f"{old.score} -> {new.score}"
        print(f"{folder}: {new.metric} {change}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.models.lms import availability

    what, pattern = args.what, args.pattern
    if args.diff is not None:
        if what != "recipes":
            raise HarnessError(f"--diff compares recipes: `harness list recipes --diff {args.diff}`, not {what}")
        from harness.models import groups

        print(groups.diff(args.diff, pattern))
        return 0
    if what == "lms":
        rows = [
            [k, s.source, s.hub_id or s.gguf_file, s.params, availability(s)]
            for k in registry.LMS.names(pattern)
            for s in [registry.LMS.get(k)]
        ]
        headers = ["lm", "source", "hub id / file", "params", "available here"]
    elif what == "encoders":
        rows = [
            [k, e.timm_name, e.weights, e.note]
            for k in registry.ENCODERS.names(pattern)
            for e in [registry.ENCODERS.get(k)]
        ]
        headers = ["encoder", "timm model", "weights", "note"]
    elif what == "recipes":
        rows = [
            [k, r.description, r.lr, r.steps, r.batch_size, r.image_size, r.n_prefix, r.train_data]
            for k in registry.RECIPES.names(pattern)
            for r in [registry.RECIPES.get(k)]
        ]
        headers = ["recipe", "what trains", "lr", "steps", "batch", "image px", "n_prefix", "train data"]
    elif what == "tasks":
        from harness.data.sources import sources

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
    from harness.checks.bench import cmd_bench as run

    return run(args)


def cmd_check(args: argparse.Namespace) -> int:
    from harness.checks.check import cmd_check as check

    return check(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    table, missing = preflight.doctor(args.task or [], args.model or [])
    print(table)
    print(f"{missing} thing(s) missing: see the MISSING rows" if missing else "everything asked about is ready")
    return 1 if missing else 0
