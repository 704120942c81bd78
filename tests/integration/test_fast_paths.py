"""Fast paths on real and tiny LMs: batched generation gives transformers' one-at-a-time answers, and a run
generates each distinct prompt once."""

from __future__ import annotations

import pytest

from harness import registry
from harness.checks.naive import naive_generate
from harness.evaluation import tasks
from harness.models import lms
from harness.models.prefix import VisualPrefixModel
from harness.prompt import blacked_out
from tests.unit.test_prefix import TinyEncoder


@pytest.mark.slow
def test_smollm2_batched_answers_equal_transformers_generate_one_at_a_time():
    lm, tokenizer = lms.load(lms.resolve(registry.LMS.get("smollm2-135m")))
    model = VisualPrefixModel(TinyEncoder(), lm, tokenizer, 2, 32, (0.5,) * 3, (0.5,) * 3).eval()
    task = registry.TASKS.get("easyvqa-tiny")
    dataset = tasks.load(task)
    rows = tasks.rows(task, dataset)[:6]
    support = tasks.support_pool(task, dataset)[:2]
    prompts = [tasks.build_prompt(task, dataset, r, support if i % 2 else []) for i, r in enumerate(rows)]
    prompts += [blacked_out(p) for p in prompts[:2]]
    fast = model.generate(prompts, 8, task.stop, batch_size=4)
    assert fast == [naive_generate(model, p, 8, task.stop) for p in prompts]
    assert any(fast)


def test_a_prompt_seen_earlier_in_the_run_is_not_generated_again(tiny_hub, fast_recipe, monkeypatch, tmp_path):
    """Blacked-out images make one prompt of every repeated question: each is generated once per run,
    and the answers are those of generating every prompt."""
    import itertools

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))  # its runs stay out of the other tests' tables

    from harness.config import parse_overrides
    from harness.evaluation import answering
    from harness.evaluation import evaluate as ev
    from harness.evaluation.cells import Cell
    from harness.models.spec import resolve
    from harness.training.train import train

    spec = resolve("gpt2-frozen", parse_overrides([*fast_recipe, "seed=53"]))
    model = train(spec, progress=False)
    task = registry.TASKS.get("easyvqa-tiny")
    generated = []
    real = VisualPrefixModel.generate

    def counting(self, prompts, *args, **kwargs):
        generated.extend(prompts)
        return real(self, prompts, *args, **kwargs)

    monkeypatch.setattr(VisualPrefixModel, "generate", counting)
    settings = ev.EvalSettings(shots=0, images="black", batch_size=4, limit=60)
    once = ev.evaluate(model, Cell(spec, task, settings).prepare(model), progress=False)
    questions = {r.question for r in tasks.rows(task, tasks.load(task))[:60]}
    assert len(generated) == len(questions) < 60
    fresh = itertools.count()
    monkeypatch.setattr(answering, "prompt_key", lambda prompt: next(fresh))  # every prompt new: all generated
    generated.clear()
    settings = ev.EvalSettings(shots=0, images="black", batch_size=4, limit=60, seed=1)
    every = ev.evaluate(model, Cell(spec, task, settings).prepare(model), progress=False)
    assert len(generated) == 60

    def predictions(metrics):
        import json
        from pathlib import Path

        lines = (Path(metrics.run_dir) / "samples.jsonl").read_text().splitlines()
        return {s["id"]: s["prediction"] for s in map(json.loads, lines)}

    assert predictions(once) == predictions(every)


@pytest.mark.slow
def test_the_tuned_model_trains_with_the_plain_models_loss_on_this_device():
    """SmolLM2-frozen with EfficientNet-Lite0 in training mode (batch statistics), on easy-vqa images: the
    model as tuned for this device gives the loss of the model in the default layout. (A channels-last
    encoder on the CPU moved the first step's loss by 0.1%, 7.1587 against 7.1671.)"""
    import torch

    from harness.data import sources as data
    from harness.models.loading import build
    from harness.models.spec import resolve
    from harness.training.train import _set_train_mode, batch_indices

    spec = resolve("smollm2-135m-frozen")
    model = build(spec, "cpu")
    _set_train_mode(model, spec)
    dataset = data.load(spec.recipe.train_data)
    captions = dataset.captions["train"]
    batch = [captions[i] for i in batch_indices(len(captions), 16, 0, 0)]
    images, texts = [dataset.image(c.image) for c in batch], [c.text for c in batch]
    with torch.no_grad():
        tuned = model.loss(images, texts).item()
        model.encoder.to(memory_format=torch.contiguous_format)
        model.channels_last = False
        plain = model.loss(images, texts).item()
    assert abs(tuned - plain) < 1e-5 * abs(plain)
