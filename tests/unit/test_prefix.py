"""VisualPrefixModel on tiny random LMs of several families: embedding, loss, gradients, generation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.models.prefix import IGNORE, VisualPrefixModel
from harness.prompt import Image
from tests.tiny_lm import tiny_model, tiny_tokenizer

FAMILIES = ["gpt2", "opt", "gpt_neox", "llama"]


class TinyEncoder(nn.Module):
    """A small conv net with timm's pooled-features interface (``num_features``)."""

    num_features = 16

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).relu().mean(dim=(2, 3))


def make(family: str, seed: int = 0, n_prefix: int = 2) -> VisualPrefixModel:
    tok = tiny_tokenizer()
    tok.pad_token = tok.eos_token
    torch.manual_seed(seed)
    model = VisualPrefixModel(
        TinyEncoder(), tiny_model(family, len(tok), seed), tok, n_prefix, 16, (0.5,) * 3, (0.5,) * 3
    )
    return model.eval()


def image(seed: int, size: int = 20) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8)


def prompts() -> list:
    """Mixed lengths, several images each, images in different places."""
    return [
        [Image("a", image(1)), "Question: what color is the shape? Answer:"],
        [Image("b", image(2)), "a red circle.", Image("c", image(3)), "is there a circle? Answer:"],
        [
            "This is",
            Image(
                "d",
                image(4),
            ),
            "a dax.",
            Image("e", image(5)),
            Image("f", image(6)),
            "Answer:",
        ],
        [Image("g", image(7, 40))],
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_embed_left_pads_and_places_images(family):
    model = make(family)
    batch = model.embed(prompts())
    lengths = batch.attention_mask.sum(1)
    assert batch.attention_mask[:, -1].all()  # left padding: every row ends at the last column
    for row, length in enumerate(lengths.tolist()):
        assert batch.position_ids[row, -length:].tolist() == list(range(length))
    # Row 3 is one image alone: exactly n_prefix positions, equal to the encoded prefix.
    prefix = model.encode_images([image(7, 40)])[0]
    assert lengths[3] == model.n_prefix
    torch.testing.assert_close(batch.embeds[3, -2:], prefix)


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_counts_only_target_tokens_and_matches_full_logits(family):
    model = make(family)
    ps, targets = prompts(), ["red", "a blue circle.", "dax", "a teal triangle."]
    batch = model.embed(ps, targets)
    out = model.lm(inputs_embeds=batch.embeds, attention_mask=batch.attention_mask, position_ids=batch.position_ids)
    labels = batch.labels[:, 1:]
    expected = F.cross_entropy(
        out.logits[:, :-1].reshape(-1, out.logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE
    )
    torch.testing.assert_close(model.prompt_loss(ps, targets), expected, rtol=1e-5, atol=1e-5)
    n_target = sum(len(model.tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in targets)
    assert int((labels != IGNORE).sum()) == n_target  # caption tokens + EOS, nothing of the prompt


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_reach_the_encoder_through_a_frozen_lm(family):
    model = make(family)
    model.lm.requires_grad_(False)
    model.loss([image(1), image(2)], ["a red circle.", "a blue triangle."]).backward()
    assert model.encoder.conv.weight.grad is not None and model.encoder.conv.weight.grad.abs().sum() > 0
    assert model.prefix_map.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.lm.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_generation_equals_one_at_a_time(family):
    model = make(family, seed=3)
    ps = prompts()
    batched = model.generate(ps, max_new_tokens=6)
    single = [model.generate([p], max_new_tokens=6)[0] for p in ps]
    assert batched == single
    assert any(batched)  # something was generated, so the comparison means something


def test_generation_tokens_equal_a_full_recompute():
    """The KV-cache loop picks, at every step, the argmax of a full forward pass over the sequence."""
    model = make("llama", seed=5)
    p = prompts()[1]
    text = model.generate([p], max_new_tokens=5)[0]
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    for step in range(len(ids)):
        so_far = model.tokenizer.decode(ids[:step])
        batch = model.embed([p + [so_far]] if so_far else [p])
        with torch.no_grad():
            logits = model.lm(
                inputs_embeds=batch.embeds, attention_mask=batch.attention_mask, position_ids=batch.position_ids
            ).logits
        assert int(logits[0, -1].argmax()) == ids[step]


def test_stop_strings_cut_the_text_and_max_new_tokens_bounds_it():
    from harness.models.generate import cut_at_stop

    assert cut_at_stop("\n blue\nQuestion: x", ["\n"]) == ("blue", True)
    assert cut_at_stop("red. Question", ["Question", "."]) == ("red", True)
    assert cut_at_stop("no stop here", ["\n"]) == ("no stop here", False)
    model = make("gpt2", seed=1)
    free = model.generate(prompts()[:2], max_new_tokens=12)
    bounded = model.generate(prompts()[:2], max_new_tokens=2)
    for long, short in zip(free, bounded):
        assert len(model.tokenizer(short, add_special_tokens=False)["input_ids"]) <= 2
        assert long.startswith(short)


def test_suppressed_tokens_are_never_generated():
    model = make("gpt2", seed=1)
    first = model.generate(prompts()[:1], max_new_tokens=1)[0]
    banned = model.tokenizer(first, add_special_tokens=False)["input_ids"][0]
    model.suppress_token_ids = [banned]
    again = model.generate(prompts()[:1], max_new_tokens=1)[0]
    assert banned not in model.tokenizer(again, add_special_tokens=False)["input_ids"]


def test_the_unit_vocabulary_of_a_frozen_lm_is_computed_once_and_follows_changes_to_the_weights():
    import torch.nn.functional as F

    from harness.models.objectives import unit_vocabulary

    model = make("llama")
    weight = model.lm.get_input_embeddings().weight
    weight.requires_grad_(False)
    first = unit_vocabulary(model)
    assert unit_vocabulary(model) is first  # frozen: kept
    torch.testing.assert_close(first, F.normalize(weight.float(), dim=-1))
    with torch.no_grad():
        weight.mul_(2).add_(1)  # an in-place change (a loaded checkpoint, say) bumps the version
    changed = unit_vocabulary(model)
    assert changed is not first
    torch.testing.assert_close(changed, F.normalize(weight.float(), dim=-1))
    weight.requires_grad_(True)  # a finetuned LM: computed at every call, with its gradient
    trained = unit_vocabulary(model)
    assert trained.requires_grad and trained is not unit_vocabulary(model)
