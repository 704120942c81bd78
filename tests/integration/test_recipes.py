"""Every recipe on the generated tiny task, through the real hub loading path (tiny LM in the cache)."""

from __future__ import annotations

import pytest
import torch

from harness.config import parse_overrides
from harness.models.loading import build
from harness.models.prefix import VisualPrefixModel
from harness.models.spec import resolve
from harness.training import checkpoint
from harness.training.train import train


def _spec(recipe: str, fast_recipe: list[str]):
    return resolve(f"gpt2-{recipe}", parse_overrides(fast_recipe))


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _pretrained_lm_state(fast_recipe):
    return _state(build(_spec("frozen", fast_recipe)).lm)


@pytest.mark.slow
def test_frozen_trains_encoder_and_map_and_leaves_the_lm_bitwise(tiny_hub, fast_recipe):
    spec = _spec("frozen", fast_recipe)
    before = build(spec)
    lm0, enc0, map0 = _state(before.lm), _state(before.encoder), _state(before.prefix_map)
    trained = train(spec, progress=False)
    assert _equal(_state(trained.lm), lm0)
    assert not _equal(_state(trained.encoder), enc0)
    assert not _equal(_state(trained.prefix_map), map0)
    saved = checkpoint.load(spec.checkpoint_dir, spec.fingerprint)
    assert saved.step == spec.recipe.steps
    assert {k.split(".")[0] for k in saved.model} == {"encoder", "prefix_map"}  # only what trains
    reloaded, _ = spec.load(None, train_missing=False)  # the trained checkpoint, as run and eval load it
    assert _equal(_state(reloaded.encoder), _state(trained.encoder))
    assert _equal(_state(reloaded.lm), lm0)


@pytest.mark.slow
def test_finetuned_changes_the_lm(tiny_hub, fast_recipe):
    spec = _spec("finetuned", [*fast_recipe, "lr=1.0e-3"])
    lm0 = _pretrained_lm_state(fast_recipe)
    trained = train(spec, progress=False)
    assert not _equal(_state(trained.lm), lm0)
    assert _equal(_state(spec.load(None, train_missing=False)[0].lm), _state(trained.lm))


def test_scratch_starts_from_random_lm_weights(tiny_hub, fast_recipe):
    spec = _spec("scratch", fast_recipe)
    pretrained = _pretrained_lm_state(fast_recipe)
    start = _state(build(spec).lm)
    assert start.keys() == pretrained.keys()
    assert not any(torch.equal(start[k], pretrained[k]) for k in start if k.endswith("weight") and start[k].dim() == 2)
    assert _equal(_state(build(spec).lm), start)  # seeded: the same random init every time
    trained = train(spec, progress=False)
    assert not _equal(_state(trained.lm), start)


@pytest.mark.slow
def test_train_blind_sees_only_black_images_at_training_and_by_default_at_eval(tiny_hub, fast_recipe, monkeypatch):
    from harness import registry
    from harness.evaluation.cells import Cell
    from harness.evaluation.evaluate import EvalSettings, evaluate

    seen: list[torch.Tensor] = []
    real_forward, real_generate = VisualPrefixModel.forward, VisualPrefixModel.generate

    def spy_forward(self, images, *args, **kwargs):  # every training loss goes through forward, packed or not
        seen.extend(images)
        return real_forward(self, images, *args, **kwargs)

    monkeypatch.setattr(VisualPrefixModel, "forward", spy_forward)
    spec = _spec("train-blind", fast_recipe)
    model = train(spec, progress=False)
    assert len(seen) == spec.recipe.steps * spec.recipe.batch_size
    assert all(int(px.max()) == 0 for px in seen)

    shown: list[torch.Tensor] = []

    def spy_generate(self, prompts, max_new_tokens, stop=(), *args):
        shown.extend(s.pixels for p in prompts for s in p if not isinstance(s, str))
        return real_generate(self, prompts, max_new_tokens, stop, *args)

    monkeypatch.setattr(VisualPrefixModel, "generate", spy_generate)
    assert spec.recipe.eval_images == "black"
    task = registry.TASKS.get("easyvqa-tiny")
    evaluate(model, Cell(spec, task, EvalSettings(images=spec.recipe.eval_images)).prepare(model), progress=False)
    assert shown and all(int(px.max()) == 0 for px in shown)
    shown.clear()
    evaluate(model, Cell(spec, task, EvalSettings(images="real")).prepare(model), progress=False)
    assert shown and any(int(px.max()) > 0 for px in shown)


@pytest.mark.slow
def test_linear_trains_only_the_map(tiny_hub, fast_recipe):
    spec = _spec("linear", fast_recipe)
    before = build(spec)
    enc0, map0, lm0 = _state(before.encoder), _state(before.prefix_map), _state(before.lm)
    trained = train(spec, progress=False)
    assert _equal(_state(trained.encoder), enc0)  # BatchNorm statistics included: the encoder stays in eval mode
    assert _equal(_state(trained.lm), lm0)
    assert not _equal(_state(trained.prefix_map), map0)


@pytest.mark.slow
@pytest.mark.parametrize("lm", ["opt-125m", "pythia-160m"])
def test_other_lm_families_train_and_generate(tiny_hub, fast_recipe, lm):
    spec = resolve(f"{lm}-frozen", parse_overrides(fast_recipe))
    model = train(spec, progress=False)
    from harness.data.sources import load

    d = load("tiny-shapes")
    from harness.prompt import Image

    out = model.generate([[Image("x", d.image("test/0")), "Question: what color is the shape? Answer:"]], 3)
    assert isinstance(out[0], str)


def _moved(after: torch.nn.Module, before: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(norm, largest element) of the change of a part's parameters (not its buffers: BatchNorm statistics)."""
    deltas = [(p.detach() - before[n]).flatten() for n, p in after.named_parameters()]
    delta = torch.cat(deltas)
    return float(delta.norm()), float(delta.abs().max())


@pytest.mark.slow
def test_one_step_of_finetuned_moves_the_encoder_as_frozen_does_and_the_lm_at_its_own_rate(tiny_hub, fast_recipe):
    """From the same initial weights and batch: Adam's first step moves each weight by at most its group's rate
    (by about it where the gradient is not tiny), so the largest change of each part is its group's rate, and the
    encoder's update has the same size in both. With one rate for all (lr 1e-5) the encoder would move 30x less."""
    one_step = [*fast_recipe, "steps=1"]
    frozen, finetuned = _spec("frozen", one_step), _spec("finetuned", one_step)
    start = build(frozen)
    params = {part: {n: p.detach().clone() for n, p in getattr(start, part).named_parameters()}
              for part in ("encoder", "prefix_map", "lm")}  # fmt: skip
    assert all(torch.equal(p, params["encoder"][n]) for n, p in build(finetuned).encoder.named_parameters())
    a, b = train(frozen, progress=False), train(finetuned, progress=False)
    enc_a, enc_b = _moved(a.encoder, params["encoder"]), _moved(b.encoder, params["encoder"])
    assert enc_b[0] == pytest.approx(enc_a[0], rel=0.05)  # the same update size
    assert enc_a[1] == pytest.approx(3e-4, rel=0.01) and enc_b[1] == pytest.approx(3e-4, rel=0.01)
    assert _moved(b.prefix_map, params["prefix_map"])[1] == pytest.approx(3e-4, rel=0.01)
    lm_norm, lm_max = _moved(b.lm, params["lm"])
    assert lm_max == pytest.approx(1e-5, rel=0.01) and _moved(a.lm, params["lm"]) == (0.0, 0.0)
    # The groups and their rates are in the checkpoint's metadata, counted as `show --recipe` counts them.
    from harness.models import groups

    meta = checkpoint.load(finetuned.checkpoint_dir, finetuned.fingerprint).meta["param_groups"]
    counts, _ = groups.count(finetuned.lm.spec, finetuned.encoder, finetuned.recipe)
    assert meta == {"encoder": {"lr": 3e-4, "params": counts["encoder"]}, "map": {"lr": 3e-4, "params": counts["map"]},
                    "lm": {"lr": 1e-5, "params": counts["lm"]}}  # fmt: skip
    assert counts["lm"] == sum(p.numel() for p in b.lm.parameters()) and lm_norm > 0
    assert set(checkpoint.load(frozen.checkpoint_dir, frozen.fingerprint).meta["param_groups"]) == {"encoder", "map"}


def test_an_unknown_question_type_stops_before_training_in_one_line(tiny_hub, fast_recipe, capsys):
    from tests.robustness.conftest import cli_error

    args = ["train", "--model", "gpt2-supervised", *[a for s in fast_recipe for a in ("--set", s)]]
    line = cli_error(capsys, [*args, "--set", "question_types=[colour]"])
    assert line == ("error: recipe 'supervised': question_types: no training question of tiny-shapes has the type "
                    "'colour' (its types: color, shape, yes/no)")  # fmt: skip
    spec = _spec("supervised", fast_recipe)
    assert (spec.recipe.question_types, spec.recipe.aux_embed) == (("color", "shape"), 0.0)
