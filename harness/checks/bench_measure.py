"""The measurements of ``harness bench``, each beside the naive reference (``harness.checks.naive``) on the same
inputs: training images/s and model FLOP/s, answers/s zero- and 4-shot, a whole task's wall time; at each
precision the harness can run at here.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from harness.checks.naive import naive_generate, naive_loss
from harness.config import TaskConfig
from harness.data.sources import sources
from harness.data.types import Caption, Dataset
from harness.errors import HarnessError
from harness.evaluation import tasks
from harness.evaluation.fewshot import draw_support
from harness.models.generate import synchronize
from harness.models.prefix import VisualPrefixModel
from harness.precision import matmul_rates
from harness.prompt import Prompt

log = logging.getLogger(__name__)

# Dense bf16 tensor-core peaks (no sparsity) from the vendors' data sheets, matched against the device
# name in order; an unknown device leaves the fraction of peak blank.
PEAK_BF16_FLOPS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12))

CAPTION_TOKENS = 16  # caption length of the training measurement (an EOS follows)
ANSWER_TOKENS = 8  # new tokens of the answers/s measurements
SHOTS = 4
NAIVE_TRAIN_BATCH = 32


@dataclass(frozen=True)
class Sizes:
    train_batch: int  # the harness's batch (the naive loop always uses NAIVE_TRAIN_BATCH)
    train_steps: int  # timed steps per repeat
    warmup: int  # untimed steps (and generation calls) first
    repeats: int
    eval_prompts: int  # zero-shot prompts of the batched path; the 4-shot ones are half as many
    eval_batch: int
    naive_prompts: int  # prompts the naive path answers, one at a time
    task_questions: int  # questions of the end-to-end task (0: all)


SIZES = {
    "full": Sizes(train_batch=1024, train_steps=5, warmup=3, repeats=5, eval_prompts=8192, eval_batch=2048,
                  naive_prompts=64, task_questions=0),
    "quick": Sizes(train_batch=32, train_steps=1, warmup=1, repeats=3, eval_prompts=64, eval_batch=32,
                   naive_prompts=8, task_questions=200),
    "smoke": Sizes(train_batch=4, train_steps=1, warmup=1, repeats=1, eval_prompts=4, eval_batch=2,
                   naive_prompts=2, task_questions=4),
}  # fmt: skip


class Bench:
    """The measurements, each against the naive path on the same inputs."""

    def __init__(
        self, model: VisualPrefixModel, dataset: Dataset, task: TaskConfig, sizes: Sizes, compile_lm: bool
    ) -> None:
        self.model, self.dataset, self.task, self.sizes = model, dataset, task, sizes
        self.compile_lm = compile_lm
        self.device = model.device
        self.captions = long_captions(model, dataset.captions.get("train", []), CAPTION_TOKENS)
        rows = tasks.rows(task, dataset)
        pool = tasks.support_pool(task, dataset)
        queries = rows[: sizes.eval_prompts]
        self.zero_shot = [tasks.build_prompt(task, dataset, r, []) for r in queries]
        fewshot = queries[: max(1, sizes.eval_prompts // 2)]
        self.few_shot = [
            tasks.build_prompt(task, dataset, r, draw_support(task.name, 0, r, pool, SHOTS)) for r in fewshot
        ]
        # One support set for every query, as in an episode: the case a shared KV cache serves.
        support = draw_support(task.name, 0, rows[-1], pool, SHOTS)
        in_support = {s.image for s in support}
        self.episode = [tasks.build_prompt(task, dataset, r, support) for r in fewshot if r.image not in in_support]
        needed = sizes.train_batch * (sizes.warmup + sizes.repeats) * sizes.train_steps
        for caption in self.captions[:needed]:
            dataset.image(caption.image)  # decoded once before timing, as a training run's first epoch does

    def run(self, precisions: Sequence[str], chosen: str) -> dict:
        """Every measurement: the naive references first (fp32, default memory layout), then the harness's paths
        at each of ``precisions``; the unsuffixed figures are those of ``chosen``, what ``auto`` runs at."""
        model, sizes, task = self.model, self.sizes, self.task
        first_batch = self.train_batch(0, NAIVE_TRAIN_BATCH)
        log.info("bench: naive training loop")
        naive_train = self.train_rate(naive_loss, NAIVE_TRAIN_BATCH)
        log.info("bench: naive generation, one prompt at a time")
        naive = {name: self.naive_answers(prompts) for name, prompts in self.prompt_sets().items()}
        naive_task = self.naive_answers(self.task_prompts(sizes.naive_prompts), task.max_new_tokens, task.stop)
        with torch.no_grad():
            naive_first_loss = float(naive_loss(model, *first_batch))
        flops = self.train_flops()
        rates = matmul_rates(fresh=True) if self.device.type == "cpu" else {}
        out: dict = {}
        detail: dict = {"naive": naive_train}
        agreement, losses, task_runs = {}, {}, {}
        for precision in precisions:  # fp32 first: bf16 stores the frozen LM's weights in bf16 for good
            model.tune_for_device(precision)
            if self.compile_lm:
                model.lm.get_decoder().compile(dynamic=True)
            with torch.no_grad():
                losses[precision] = float(model.loss(*first_batch))
            log.info("bench: harness training, %s", precision)
            train = self.train_rate(VisualPrefixModel.loss, sizes.train_batch)
            detail[precision] = train
            got = {
                "train": _figure(train["images_per_s"], "images/s", naive_train["images_per_s"]),
                "train_model_flops": _figure(train["images_per_s"] * flops, "FLOP/s", naive_train["images_per_s"] * flops),
            }  # fmt: skip
            for what in ("fp32", "bf16"):
                if rates:
                    got[f"train_fraction_of_{what}_matmul"] = _figure(
                        got["train_model_flops"]["value"] / (rates[what] * 1e9), "fraction",
                        got["train_model_flops"]["naive"] / (rates[what] * 1e9))  # fmt: skip
            if (peak := self.peak_flops()) is not None:
                got["train_fraction_of_bf16_peak"] = _figure(got["train_model_flops"]["value"] / peak, "fraction",
                                                             got["train_model_flops"]["naive"] / peak)  # fmt: skip
            if train["peak_gib"] is not None:
                got["train_peak_memory"] = _figure(train["peak_gib"], "GiB", naive_train["peak_gib"], False)
            log.info("bench: harness generation, %s", precision)
            for name, prompts in self.prompt_sets().items():
                rate, answers = self.answer_rate(prompts)
                got[f"answers_{name}"] = _figure(rate, "answers/s", naive[name][0])
                agreement[f"{name} ({precision})"] = _agreement(answers, naive[name][1])
            zero, four = got["answers_zero_shot"], got["answers_4_shot"]
            # A ratio of costs has no ratio to the naive one: its target is a bound (3x).
            got["cost_4_shot_vs_zero_shot"] = {"value": zero["value"] / four["value"], "unit": "x",
                                               "naive": zero["naive"] / four["naive"], "ratio": None}  # fmt: skip
            log.info("bench: the whole task, end to end, %s", precision)
            task_run = self.whole_task()
            got["task_wall"] = _figure(task_run.pop("seconds"), "s", task_run["questions"] / naive_task[0],
                                       higher_is_better=False)  # fmt: skip
            agreement[f"task ({precision})"] = _agreement(task_run.pop("answers"), naive_task[1])
            task_runs[precision] = task_run
            out.update({f"{k}_{precision}": v for k, v in got.items()})
            if precision == chosen:
                out.update(got)
        loss_check = {p: {"harness": v, "naive": naive_first_loss,
                          "relative_difference": abs(v - naive_first_loss) / abs(naive_first_loss)}
                      for p, v in losses.items()}  # fmt: skip
        return {
            "measurements": out,
            "matmul_rates_gflops": rates,
            "task_run": {
                **task_runs,
                "naive_seconds": f"{len(naive_task[1])} questions answered one at a time, scaled",
            },
            "train_detail": {**detail, "images": IMAGES_NOTE},
            "flops": {"train_flops_per_image": flops, "formula": FLOP_FORMULA, "peak_bf16_flops": self.peak_flops()},
            "correctness": {"answers_equal_to_naive": agreement, "first_batch_loss": loss_check},
        }

    # ---- training ------------------------------------------------------------------------------
    def train_batch(self, step: int, batch: int) -> tuple[list[torch.Tensor], list[str]]:
        n = len(self.captions)
        chosen = [self.captions[(step * batch + i) % n] for i in range(batch)]
        return [self.dataset.image(c.image) for c in chosen], [c.text for c in chosen]

    def train_rate(self, loss_fn: Callable, batch: int) -> dict:
        """Images/s of full training steps (data, forward, backward, Adam) at ``batch``."""
        model, sizes = self.model, self.sizes
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=1e-5, betas=(0.9, 0.95))
        model.prefix_map.train()
        model.encoder.train()
        step = 0

        def train_step() -> None:
            nonlocal step
            loss = loss_fn(model, *self.train_batch(step, batch))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        trained = {"encoder": model.encoder, "prefix_map": model.prefix_map}
        before = {name: copy.deepcopy(module.state_dict()) for name, module in trained.items()}
        seconds = self.timed(lambda: [train_step() for _ in range(sizes.train_steps)])
        model.eval()
        opt.zero_grad(set_to_none=True)
        for name, module in trained.items():
            module.load_state_dict(before[name])  # every measurement runs on the same weights
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else None
        return {"batch": batch, "images_per_s": batch * sizes.train_steps / seconds, "peak_gib": peak}

    def train_flops(self) -> float:
        """Model FLOPs of one training image (FLOP_FORMULA)."""
        model = self.model
        head = model.lm.get_output_embeddings().weight
        body = sum(p.numel() for p in model.lm.parameters()) - model.lm.get_input_embeddings().weight.numel()
        if head.data_ptr() != model.lm.get_input_embeddings().weight.data_ptr():
            body -= head.numel()
        positions = model.n_prefix + CAPTION_TOKENS + 1
        lm_forward = 2 * body * positions + 2 * head.numel() * (CAPTION_TOKENS + 1)
        return 2 * lm_forward + 3 * (self.encoder_forward_flops() + 2 * model.prefix_map.weight.numel())

    def encoder_forward_flops(self) -> float:
        from torch.utils.flop_counter import FlopCounterMode

        x = torch.zeros(1, 3, self.model.image_size, self.model.image_size, device=self.device)
        with torch.no_grad(), self.model.autocast(), FlopCounterMode(display=False) as counter:
            self.model.encoder(x)
        return float(counter.get_total_flops())

    def peak_flops(self) -> float | None:
        if self.device.type != "cuda":
            return None
        name = torch.cuda.get_device_name(self.device)
        return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)

    # ---- evaluation ----------------------------------------------------------------------------
    def prompt_sets(self) -> dict[str, list[Prompt]]:
        return {"zero_shot": self.zero_shot, "4_shot": self.few_shot, "4_shot_shared_support": self.episode}

    def answer_rate(self, prompts: Sequence[Prompt]) -> tuple[float, list[str]]:
        answers: list[str] = []

        def run() -> None:
            answers[:] = self.model.generate(prompts, ANSWER_TOKENS, (), self.sizes.eval_batch)

        self.model.generate(prompts[: self.sizes.eval_batch], ANSWER_TOKENS, (), self.sizes.eval_batch)  # warm-up
        return len(prompts) / self.timed(run, warmup=0), answers

    def naive_answers(
        self, prompts: Sequence[Prompt], max_new_tokens: int = ANSWER_TOKENS, stop: Sequence[str] = ()
    ) -> tuple[float, list[str]]:
        """Answers/s (from the median prompt) and answers of ``transformers``' generate, one prompt at a time."""
        prompts = prompts[: self.sizes.naive_prompts]
        naive_generate(self.model, prompts[0], max_new_tokens, stop)  # warm-up
        answers, seconds = [], []
        for prompt in prompts:
            synchronize(self.device)
            start = time.perf_counter()
            answers.append(naive_generate(self.model, prompt, max_new_tokens, stop))
            synchronize(self.device)
            seconds.append(time.perf_counter() - start)
        return 1 / statistics.median(seconds), answers

    def task_prompts(self, limit: int) -> list[Prompt]:
        """The task's first ``limit`` (0: all) zero-shot prompts from a fresh copy of its data: images decoded from files."""
        dataset = tasks.load(self.task) if self.task.hub else sources()[self.task.source].load()
        rows = tasks.rows(self.task, dataset)
        return [tasks.build_prompt(self.task, dataset, r, []) for r in (rows[:limit] if limit else rows)]

    def whole_task(self) -> dict:
        """The task end to end in the harness's path: data (load, decode, prompts), encode, prefill, decode, score."""
        from harness.models.generate import generate

        timings: dict[str, float] = {}
        start = time.perf_counter()
        prompts = self.task_prompts(self.sizes.task_questions)
        timings["data"] = time.perf_counter() - start
        with torch.no_grad(), self.model.autocast():
            answers = generate(self.model, prompts, self.task.max_new_tokens, self.task.stop, self.sizes.eval_batch,
                               timings)  # fmt: skip
        scored = time.perf_counter()
        scores = [tasks.score(self.task, a, r) for a, r in zip(answers, tasks.rows(self.task, self.dataset))]
        timings["score"] = time.perf_counter() - scored
        seconds = time.perf_counter() - start
        timings["other"] = seconds - sum(timings.values())
        return {
            "task": self.task.name,
            "questions": len(prompts),
            "seconds": seconds,
            "split_seconds": timings,
            "vqa_accuracy_untrained": 100 * sum(scores) / len(scores),
            "answers": answers,
        }

    def timed(self, fn: Callable[[], object], warmup: int | None = None) -> float:
        """Median wall seconds of ``fn`` over the repeats, after warm-up calls, device synchronised."""
        for _ in range(self.sizes.warmup if warmup is None else warmup):
            fn()
        seconds = []
        for _ in range(self.sizes.repeats):
            synchronize(self.device)
            start = time.perf_counter()
            fn()
            synchronize(self.device)
            seconds.append(time.perf_counter() - start)
        return statistics.median(seconds)


IMAGES_NOTE = (
    "real training images, each decoded from its file once and kept as uint8 (as the harness's datasets do), "
    "then per step stacked, moved to the device, resized and normalised there"
)
FLOP_FORMULA = (
    "per image: 2 * lm_forward + 3 * (encoder_forward + 2 * prefix_map_weights), where lm_forward = "
    "2 * lm_non_embedding_params * (n_prefix + caption_tokens + 1) + 2 * vocab * width * (caption_tokens + 1) "
    "(logits at the caption tokens and EOS only); the frozen LM's backward computes activation gradients "
    "only (about one forward), the trained encoder's computes weight gradients too (about two forwards); "
    "encoder_forward is counted by torch.utils.flop_counter at the image size; attention scores are left out"
)


def long_captions(model: VisualPrefixModel, captions: Sequence[Caption], n_tokens: int) -> list[Caption]:
    """Each training image with a caption of exactly ``n_tokens`` tokens: its own caption and the next ones."""
    if not captions:
        raise HarnessError("bench: the task's data source has no training captions")
    texts = [c.text for c in captions]
    out = []
    for i, caption in enumerate(captions):
        words = " ".join(texts[(i + k) % len(texts)] for k in range(n_tokens))
        ids = model.tokenizer(words, add_special_tokens=False)["input_ids"][:n_tokens]
        text = model.tokenizer.decode(ids)
        if len(model.tokenizer(text, add_special_tokens=False)["input_ids"]) == n_tokens:
            out.append(Caption(caption.image, text))
    return out


def _figure(value: float, unit: str, naive: float, higher_is_better: bool = True) -> dict:
    ratio = (value / naive if higher_is_better else naive / value) if naive and value else None
    return {"value": value, "unit": unit, "naive": naive, "ratio": ratio}


def _agreement(answers: Sequence[str], naive: Sequence[str]) -> dict:
    return {"compared": len(naive), "equal": sum(a == b for a, b in zip(answers, naive))}
