"""The fast paths give the naive paths' results: greedy answers, losses and gradients (tiny LMs, CPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import GenerationConfig

from harness.checks.naive import naive_generate, naive_loss
from harness.models import generate as gen
from harness.models.prefix import chunked_cross_entropy
from harness.prompt import Image, blacked_out
from tests.unit.test_prefix import FAMILIES, image, make, prompts

SUPPORT = "Question: what color is the shape? Answer: red\nQuestion: is there a circle? Answer: yes\n"


def mixed_prompts() -> list:
    """Mixed lengths, a duplicate, two blacked-out twins, and two queries sharing one support set."""
    ps = prompts()
    support = [Image("s1", image(11)), SUPPORT, Image("s2", image(12)), SUPPORT]
    episode = [
        support + [Image(k, image(i)), "Question: what shape is in the image? Answer:"]
        for k, i in (("q1", 13), ("q2", 14))
    ]
    return [*ps, ps[1], *[blacked_out(p) for p in ps[:2]], *episode]


def ending_token(model, ps) -> int | None:
    """A token that the free answers produce at different steps (or not at all): as EOS, rows end unevenly."""
    config = GenerationConfig(max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=model.pad_token_id)
    answers = []
    for p in ps:
        batch = model.embed([p])
        with torch.no_grad():
            out = model.lm.generate(
                inputs_embeds=batch.embeds, attention_mask=batch.attention_mask, generation_config=config
            )
        answers.append(out[0].tolist())

    def steps(token: int) -> set:
        return {a.index(token) if token in a else None for a in answers}

    return next((t for t in sorted({t for a in answers for t in a[1:]}) if len(steps(t)) > 2), None)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_generation_equals_transformers_generate_one_at_a_time(family):
    model = make(family, seed=3)
    ps = mixed_prompts()
    model.eos_token_id = ending_token(model, ps) or model.eos_token_id
    fast = model.generate(ps, max_new_tokens=8, stop=["\n"], batch_size=4)
    assert fast == [naive_generate(model, p, 8, ["\n"]) for p in ps]
    assert len(set(fast)) > 1  # the prompts get different answers, so the order is checked too


def test_rows_that_finish_early_leave_the_batch_and_change_no_other_answer():
    model = make("gpt_neox", seed=3)
    ps = mixed_prompts()
    model.eos_token_id = ending_token(model, ps)
    fast = model.generate(ps, max_new_tokens=8)
    assert len({len(model.tokenizer(a)["input_ids"]) for a in fast}) > 2  # rows ended at several different steps
    assert fast == [naive_generate(model, p, 8) for p in ps]


def test_a_shared_support_is_run_once_and_changes_no_answer(monkeypatch):
    model = make("llama", seed=4)
    episode = mixed_prompts()[-2:]
    keys = gen.SegmentKeys()
    assert gen.shared_segments(model, episode, keys) == 4  # both support images and texts
    shared = gen.greedy_generate(model, episode, 6)
    monkeypatch.setattr(gen, "MIN_SHARED_TOKENS", 10**9)
    assert gen.shared_segments(model, episode, keys) == 0
    assert gen.greedy_generate(model, episode, 6) == shared


def test_identical_prompts_are_generated_once_and_answered_in_order(monkeypatch):
    model = make("gpt2", seed=2)
    ps = prompts()
    calls = []
    real = gen.greedy_generate

    def spy(model, batch, *args, **kwargs):
        calls.append(len(batch))
        return real(model, batch, *args, **kwargs)

    monkeypatch.setattr(gen, "greedy_generate", spy)
    black = [blacked_out(p) for p in [ps[0], ps[0], ps[1]]]  # the twins' images are distinct tensors
    answers = model.generate([ps[2], *black, ps[2]], max_new_tokens=5)
    assert calls == [3]  # ps[2], one black twin, the other black prompt
    assert answers[0] == answers[4] and answers[1] == answers[2]
    assert answers == [model.generate([p], max_new_tokens=5)[0] for p in [ps[2], *black, ps[2]]]


def test_each_distinct_image_is_encoded_once_per_generation_call(monkeypatch):
    model = make("llama", seed=5)
    ps = mixed_prompts()
    # the same support images in every batch, and blacked-out images that are one image by content
    episode = [p for p in ps[-2:]] + [blacked_out(p) for p in ps[:3]]
    encoded = []
    real = model.encode_for_eval

    def spy(pixels):
        encoded.extend(pixels)
        return real(pixels)

    monkeypatch.setattr(model, "encode_for_eval", spy)
    answers = model.generate(episode, max_new_tokens=6, batch_size=1)
    keys = gen.SegmentKeys()
    distinct = {keys(s) for p in episode for s in p if isinstance(s, Image)}
    assert len(encoded) == len(distinct) == 5  # s1, s2, q1, q2 and one black image, for 9 image segments
    assert answers == [naive_generate(model, p, 6) for p in episode]


def test_evaluation_encodes_in_cache_sized_calls_with_the_one_call_features(monkeypatch):
    from harness.models import prefix

    model = make("gpt2")
    pixels = [image(i) for i in range(5)]
    calls = []
    model.encoder.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    monkeypatch.setattr(prefix, "EVAL_ENCODE_PIXELS", 2 * model.image_size**2)
    with torch.no_grad():
        whole = model.encode_images(pixels)
    assert calls == [5]
    calls.clear()
    torch.testing.assert_close(model.encode_for_eval(pixels), whole, rtol=1e-4, atol=1e-5)
    assert calls == [2, 2, 1]
    calls.clear()
    model.encoder.train()  # batch statistics: a training-mode encoder sees the whole batch at once
    model.encode_for_eval(pixels)
    assert calls == [5]


def test_preprocess_in_batches_equals_one_image_at_a_time():
    model = make("gpt2")
    pixels = [image(1), image(2, 40), image(3), image(4, 16)]
    one_by_one = torch.cat([model.preprocess([px]) for px in pixels])
    torch.testing.assert_close(model.preprocess(pixels), one_by_one)


@pytest.mark.parametrize("trainable_head", [False, True])
def test_chunked_loss_and_gradients_equal_the_unchunked_ones(trainable_head):
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False).requires_grad_(trainable_head)
    hidden = torch.randn(23, 16, requires_grad=True)
    labels = torch.randint(0, 50, (23,))
    expected = F.cross_entropy(head(hidden), labels)
    grads = torch.autograd.grad(expected, [hidden, *head.parameters()] if trainable_head else [hidden])
    chunked = chunked_cross_entropy(hidden, labels, head, chunk_tokens=5)
    torch.testing.assert_close(chunked, expected)
    for got, want in zip(
        torch.autograd.grad(chunked, [hidden, *head.parameters()] if trainable_head else [hidden]), grads
    ):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("family", FAMILIES)
def test_caption_loss_and_encoder_gradients_equal_the_full_vocabulary_loss(family):
    model = make(family)
    model.lm.requires_grad_(False)
    images, captions = [image(1), image(2, 40), image(3)], ["a red circle.", "a blue triangle. a dax.", "yes"]
    naive = naive_loss(model, images, captions)
    naive_grad = torch.autograd.grad(naive, model.encoder.conv.weight)[0]
    fast = model.loss(images, captions)
    torch.testing.assert_close(fast, naive, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        torch.autograd.grad(fast, model.encoder.conv.weight)[0], naive_grad, rtol=1e-4, atol=1e-6
    )


def test_bf16_training_follows_the_fp32_loss_curve():
    """A frozen LM stored in bf16 with bf16 autocast trains like fp32, within bf16's precision."""
    curves = []
    for bf16 in (False, True):
        model = make("llama", seed=7)
        model.lm.requires_grad_(False)
        if bf16:
            model.use_bf16()
            assert next(model.lm.parameters()).dtype == torch.bfloat16
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        curve = []
        for step in range(6):
            loss = model.loss([image(step), image(step + 10)], ["a red circle.", "a blue triangle."])
            opt.zero_grad()
            loss.backward()
            opt.step()
            curve.append(loss.item())
        curves.append(curve)
    torch.testing.assert_close(torch.tensor(curves[1]), torch.tensor(curves[0]), rtol=2e-2, atol=0)


def test_the_default_evaluation_batch_follows_the_models_device(monkeypatch):
    from types import SimpleNamespace

    from harness.evaluation.evaluate import DEFAULT_BATCH, EvalSettings, default_batch_size

    assert EvalSettings().batch_size == 0  # 0: chosen by device when the run starts
    assert default_batch_size(SimpleNamespace(device=torch.device("cpu"))) == DEFAULT_BATCH["cpu"] == 128
    assert default_batch_size(SimpleNamespace(device=torch.device("cuda", 1))) == DEFAULT_BATCH["cuda"] == 512
    assert default_batch_size(SimpleNamespace(device="cuda:0")) == 512
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_batch_size(object()) == 128  # a model of one's own without a device attribute
    assert default_batch_size(SimpleNamespace(device=None)) == 128
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_batch_size(object()) == 512
