"""Training with the newer recipe fields: fingerprints of the models before them unchanged, the packed loss and
its target count, the embedding loss, out-of-memory halving by whole sequences, the learning-rate schedule, a
short training of everything together, question_types, and `harness show --train`."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness import registry
from harness.config import parse_overrides, replace_fields
from harness.data import dev, sources
from harness.errors import HarnessError
from harness.evaluation import tasks
from harness.models import objectives
from harness.models.prefix import IGNORE
from harness.models.spec import resolve
from harness.prompt import Image
from tests.unit.test_prefix import image, make

# Computed at the commit before these fields (47ab68e), with the tiny hub gpt2 of tests/conftest.py.
BEFORE = {
    "gpt2-frozen": "b180b77f3b9f3b46", "gpt2-finetuned": "9817b074b4c69c89", "gpt2-scratch": "4546c46a29e1068d",
    "gpt2-train-blind": "6dea20c154c23f8e", "gpt2-linear": "bc219c71dfe915ef",
}  # fmt: skip
BEFORE_SMOLLM2 = {
    "smollm2-135m-frozen": "d57348fe8c8e067d", "smollm2-135m-finetuned": "e5a13bcb4b8d60eb",
    "smollm2-135m-scratch": "7684e96c0b20ff02", "smollm2-135m-train-blind": "b63bcddbbf0e7692",
    "smollm2-135m-linear": "41cbe87c90620aea",
}  # fmt: skip
# The values the built-in recipes had then (frozen has since been tuned; its ablations follow it).
UNTUNED = {"n_prefix": 2, "pairs": 1, "aux_embed": 0.0}
TASKS_BEFORE = {"easyvqa-tiny": "8fb68de0790ff4b2", "easyvqa-full-tiny": "394a0789c71c5afb",
                "vqav2-tiny": "514a78b275adc33b", "emoji-open-tiny": "d1fb9fcee76c3c8d"}  # fmt: skip


def _before_dev(spec):
    """The fingerprint ``spec`` had before dev images were held out of training: its training data's version
    without the holdout rule (the one change since, made on purpose: those checkpoints trained on dev images)."""
    version = spec.data_version
    for name in {spec.recipe.train_data, *(n for n, _ in spec.recipe.mix())}:
        version = version.replace(dev.holdout_tag(sources.load(name)), "")
    assert version != spec.data_version
    return dataclasses.replace(spec, data_version=version).fingerprint


def test_models_and_tasks_of_before_keep_their_fingerprints(tiny_hub):
    assert _before_dev(resolve("gpt2-frozen", {"train_data": "tiny-shapes", **UNTUNED})) == "cfcd70cf8e12a01c"
    for name, task_fingerprint in TASKS_BEFORE.items():
        task = registry.TASKS.get(name)
        assert tasks.fingerprint(task, tasks.load(task)) == task_fingerprint, name
    pytest.importorskip("easy_vqa")
    # finetuned and scratch are other models now (the encoder and map at frozen's rate, the LM at its own); set back
    # to one rate for all, lr 1e-5, they are the models of before.
    one_rate = {"lr": 1e-5, "lr_lm": None}
    before = {n: resolve(n, {**UNTUNED, **(one_rate if n.endswith(("finetuned", "scratch")) else {})}) for n in BEFORE}
    assert {name: _before_dev(spec) for name, spec in before.items()} == BEFORE
    assert _before_dev(resolve("gpt2-finetuned", UNTUNED)) != BEFORE["gpt2-finetuned"]
    try:
        got = {n: _before_dev(resolve(n, {**UNTUNED, **(one_rate if n.endswith(("finetuned", "scratch")) else {})}))
               for n in BEFORE_SMOLLM2}  # fmt: skip
    except HarnessError as err:
        pytest.skip(f"smollm2 is not on this machine: {err}")
    assert got == BEFORE_SMOLLM2


def test_a_newer_field_away_from_its_default_makes_another_model(tiny_hub):
    plain = resolve("gpt2-frozen", {"train_data": "tiny-shapes"})
    seen = {plain.fingerprint}
    for field, value in [("pairs", 2), ("loss_on", "last"), ("pair_separator", " "), ("caption_style", "varied"),
                         ("train_mix", ["tiny-emoji:0.5"]), ("aux_embed", 0.1), ("lr_schedule", "cosine"),
                         ("train_text", "vqa"), ("lr_encoder", 1e-3), ("lr_map", 1e-3)]:  # fmt: skip
        seen.add(resolve("gpt2-frozen", {"train_data": "tiny-shapes", field: value}).fingerprint)
    seen.add(resolve("gpt2-supervised", {"train_data": "tiny-shapes", "question_types": ["color"]}).fingerprint)
    seen.add(resolve("gpt2-finetuned", {"train_data": "tiny-shapes", "lr_lm": 1e-4}).fingerprint)
    assert len(seen) == 13
    # A group's rate set to lr's value is still away from its default (unset): another fingerprint, the same training.
    assert resolve("gpt2-frozen", {"train_data": "tiny-shapes", "lr_map": 3e-4}).fingerprint != plain.fingerprint
    mixed = resolve("gpt2-frozen", {"train_data": "tiny-shapes", "train_mix": ["tiny-emoji:0.5"]})

    tag = dev.holdout_tag(sources.load("tiny-emoji"))
    assert mixed.data_version == f"tiny-shapes-1{tag}+tiny-emoji:0.5={sources.load('tiny-emoji').version}{tag}"


@pytest.mark.parametrize("loss_on", ["all", "last"])
def test_the_packed_loss_counts_exactly_the_targets(loss_on):
    model = make("gpt2")
    model.layout = objectives.Layout(pairs=2, loss_on=loss_on, separator="\n")
    images = [image(i) for i in range(4)]
    targets = ["a red circle.", "a blue triangle.", "a green rectangle.", "a teal circle."]
    prompts, lasts = objectives.pack(images, targets, None, model.layout)
    batch = model.embed(prompts, lasts)
    labelled = batch.labels[batch.labels != IGNORE]
    assert len(labelled) == model.target_tokens(targets)
    first = model.tokenizer.decode(batch.labels[0][batch.labels[0] != IGNORE])
    eos = model.tokenizer.eos_token
    assert first == ("a red circle.\na blue triangle." if loss_on == "all" else "a blue triangle.") + eos
    # the loss divided by target_tokens is the mean over the labelled tokens: the divisor is right
    whole = model(images, targets)
    torch.testing.assert_close(model(images, targets, model.target_tokens(targets)), whole)
    # two halves (whole sequences), each divided by the whole batch's count, add up to the whole batch's loss
    tokens = model.target_tokens(targets)
    halves = model(images[:2], targets[:2], tokens) + model(images[2:], targets[2:], tokens)
    torch.testing.assert_close(halves, whole)
    with pytest.raises(ValueError, match="whole sequences"):
        model(images[:3], targets[:3])


def test_the_plain_layout_is_frozens_loss_and_contexts_are_never_targets():
    model = make("gpt2")
    images, targets = [image(1), image(2)], ["a red circle.", "a blue triangle."]
    assert torch.equal(model(images, targets), model.loss(images, targets))
    contexts = ["Question: what color is the shape? Answer:"] * 2
    answers = [" red", " blue"]
    by_hand = model.prompt_loss([[Image("a", images[0]), contexts[0]], [Image("b", images[1]), contexts[1]]], answers)
    torch.testing.assert_close(model(images, answers, contexts=contexts), by_hand)


def test_the_embedding_loss_pulls_prefixes_toward_caption_words_and_splits_by_images():
    model = make("gpt2")  # eval mode: no dropout, so the calls below compare exactly
    images, targets = [image(i) for i in range(4)], ["a red circle.", "a blue triangle.", "a red circle.", "a gray."]
    plain = model(images, targets)
    model.layout = objectives.Layout(aux_embed=0.5)
    with_aux = model(images, targets)
    batch = model.embed([[Image(str(i), px)] for i, px in enumerate(images)])
    per_image = objectives.embedding_loss(model, batch.prefix, targets)
    assert per_image.shape == (4,) and torch.all(per_image > 0)
    torch.testing.assert_close(with_aux, plain + 0.5 * per_image.mean())
    tokens = model.target_tokens(targets)
    parts = sum(model(images[i : i + 2], targets[i : i + 2], tokens, image_divisor=4) for i in (0, 2))
    torch.testing.assert_close(parts, with_aux)
    model.prefix_map.weight.grad = None
    with_aux.backward()
    assert model.prefix_map.weight.grad.abs().sum() > 0
    stop = objectives.stop_ids(model.tokenizer)
    assert model.tokenizer(" a", add_special_tokens=False)["input_ids"][0] in stop


def test_learning_rate_schedules():
    from harness.training.train import learning_rate

    r = replace_fields(registry.RECIPES.get("frozen"), {"steps": 100, "warmup_steps": 10}, "test")
    old = [r.lr * min(1.0, (step + 1) / r.warmup_steps) for step in range(100)]  # the formula before schedules
    assert [learning_rate(r, s) for s in range(100)] == old
    cosine = [learning_rate(dataclasses.replace(r, lr_schedule="cosine"), s) for s in range(100)]
    assert cosine[:10] == old[:10] and cosine[10] == r.lr
    assert all(a > b for a, b in zip(cosine[10:], cosine[11:])) and cosine[-1] < 0.001 * r.lr


def test_out_of_memory_halving_keeps_whole_sequences(tiny_hub, fast_recipe, monkeypatch):
    """Simulated: a pass of more than 2 images raises torch.OutOfMemoryError. With pairs 2 the step is redone in
    passes of 2 (never 1), and the weights are those of straight training (embedding loss included)."""
    import shutil

    from harness.training import checkpoint
    from harness.training.train import train

    overrides = parse_overrides([*fast_recipe, "steps=2", "batch_size=8", "pairs=2", "aux_embed=0.5"])
    spec = resolve("gpt2-linear", overrides)
    train(spec, progress=False)
    straight = checkpoint.load(spec.checkpoint_dir, spec.fingerprint).model
    shutil.rmtree(spec.checkpoint_dir)
    real, sizes = objectives.loss, []

    def tight(model, images, *args, **kwargs):
        sizes.append(len(images))
        if len(images) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(objectives, "loss", tight)
    train(spec, progress=False)
    assert sizes[:3] == [8, 4, 2] and set(sizes[3:]) == {2}, sizes
    split = checkpoint.load(spec.checkpoint_dir, spec.fingerprint).model
    for key in straight:
        torch.testing.assert_close(split[key], straight[key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_short_training_with_every_new_field(tiny_hub, fast_recipe):
    from harness.training import checkpoint
    from harness.training.curves import training_curve
    from harness.training.train import train

    sets = [*fast_recipe, "steps=4", "pairs=2", "loss_on=last", "pair_separator=' '", "caption_style=varied",
            "train_mix=[tiny-emoji:0.5]", "aux_embed=0.2", "lr_schedule=cosine"]  # fmt: skip
    spec = resolve("gpt2-frozen", parse_overrides(sets))
    train(spec, progress=False)
    assert checkpoint.load(spec.checkpoint_dir, spec.fingerprint).step == 4
    curve = training_curve(spec.checkpoint_dir)
    assert [c["step"] for c in curve] == [1, 2, 3, 4] and all(c["loss"] > 0 for c in curve)
    assert curve[0]["lr"] == spec.recipe.lr and curve[-1]["lr"] < curve[1]["lr"] < curve[0]["lr"]
    vqa = resolve("gpt2-frozen", parse_overrides([*fast_recipe, "steps=2", "train_text=vqa"]))
    train(vqa, progress=False)
    assert checkpoint.load(vqa.checkpoint_dir, vqa.fingerprint).step == 2


def test_question_types_keep_only_those_queries_and_shots():
    task = registry.TASKS.get("easyvqa-attr-tiny")
    assert (task.question_types, registry.TASKS.get("easyvqa-attr").question_types) == (("color", "shape"),) * 2
    dataset = tasks.load(task)
    rows, pool = tasks.rows(task, dataset), tasks.support_pool(task, dataset)
    assert len(rows) == 120 and {r.question_type for r in rows} == {"color", "shape"}
    assert {r.question_type for r in pool} == {"color", "shape"}
    assert len(tasks.rows(registry.TASKS.get("easyvqa-full-tiny"), dataset)) == 240
    naming = replace_fields(registry.TASKS.get("emoji-open-tiny"), {"question_types": ["color"]}, "test")
    with pytest.raises(HarnessError, match="question_types is for vqa tasks, not naming tasks"):
        registry._check_task(naming, "test")


def test_show_train_prints_the_packed_sequences_without_loading_the_lm(tiny_hub, capsys, monkeypatch):
    from harness.cli.main import main
    from harness.models import lms

    def no_weights(*args, **kwargs):
        raise AssertionError("show --train loaded the LM")

    monkeypatch.setattr(lms, "load", no_weights)
    sets = ["train_data=tiny-shapes", "pairs=2", "batch_size=4", "train_mix=[tiny-emoji:0.5]"]
    assert (
        main(["show", "--train", "--model", "gpt2-frozen", "--n", "5", *[a for s in sets for a in ("--set", s)]]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    sequences = [line for line in lines if line.startswith("[img:")]
    assert len(sequences) == 5 and "«…» is what the loss counts" in lines[0]
    for line in sequences:
        assert line.count("[img:") == 2 and line.endswith("<eos>»") and line.count("«") == 2, line
        assert line.startswith(("[img:tiny-shapes/train/", "[img:tiny-emoji/google/", "[img:tiny-emoji/facebook/"))
    assert main(["show", "--train", "--model", "gpt2-frozen", "--n", "1", "--set", "train_data=tiny-shapes",
                 "--set", "loss_on=last", "--set", "pairs=2", "--set", "batch_size=2"]) == 0  # fmt: skip
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[img:")]
    assert line.count("«") == 1 and "\\n[img:" in line
    assert main(["show", "--train"]) == 2
    assert "show --train needs --model M" in capsys.readouterr().err


def test_packed_training_data_parallel_share_must_be_whole_sequences(tiny_hub, fast_recipe, monkeypatch):
    from harness import distributed
    from harness.training.train import train

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    spec = resolve("gpt2-frozen", parse_overrides([*fast_recipe, "batch_size=4", "pairs=4"]))
    with pytest.raises(HarnessError, match="not whole sequences of 4 pairs: use a multiple of 8"):
        train(spec, progress=False)
