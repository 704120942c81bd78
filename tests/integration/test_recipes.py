"""Every recipe on the generated tiny task, through the real hub loading path (tiny LM in the cache)."""

from __future__ import annotations

import pytest
import torch

from harness.config import parse_overrides
from harness.models.loading import build, load_trained
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
    reloaded = load_trained(spec)
    assert _equal(_state(reloaded.encoder), _state(trained.encoder))
    assert _equal(_state(reloaded.lm), lm0)


def test_finetuned_changes_the_lm(tiny_hub, fast_recipe):
    spec = _spec("finetuned", [*fast_recipe, "lr=1.0e-3"])
    lm0 = _pretrained_lm_state(fast_recipe)
    trained = train(spec, progress=False)
    assert not _equal(_state(trained.lm), lm0)
    assert _equal(_state(load_trained(spec).lm), _state(trained.lm))


def test_scratch_starts_from_random_lm_weights(tiny_hub, fast_recipe):
    spec = _spec("scratch", fast_recipe)
    pretrained = _pretrained_lm_state(fast_recipe)
    start = _state(build(spec).lm)
    assert start.keys() == pretrained.keys()
    assert not any(torch.equal(start[k], pretrained[k]) for k in start if k.endswith("weight") and start[k].dim() == 2)
    assert _equal(_state(build(spec).lm), start)  # seeded: the same random init every time
    trained = train(spec, progress=False)
    assert not _equal(_state(trained.lm), start)


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


def test_linear_trains_only_the_map(tiny_hub, fast_recipe):
    spec = _spec("linear", fast_recipe)
    before = build(spec)
    enc0, map0, lm0 = _state(before.encoder), _state(before.prefix_map), _state(before.lm)
    trained = train(spec, progress=False)
    assert _equal(_state(trained.encoder), enc0)  # BatchNorm statistics included: the encoder stays in eval mode
    assert _equal(_state(trained.lm), lm0)
    assert not _equal(_state(trained.prefix_map), map0)


@pytest.mark.parametrize("lm", ["opt-125m", "pythia-160m"])
def test_other_lm_families_train_and_generate(tiny_hub, fast_recipe, lm):
    spec = resolve(f"{lm}-frozen", parse_overrides(fast_recipe))
    model = train(spec, progress=False)
    from harness.data.sources import load

    d = load("tiny-shapes")
    from harness.prompt import Image

    out = model.generate([[Image("x", d.image("test/0")), "Question: what color is the shape? Answer:"]], 3)
    assert isinstance(out[0], str)
