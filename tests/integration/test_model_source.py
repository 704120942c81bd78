"""One interface for where a model comes from: a registry model trained here, a --checkpoint file trained elsewhere,
a class of one's own and hf:<folder> each answer it, and no caller outside harness/models asks which one it is."""

from __future__ import annotations

import re
from pathlib import Path

from harness.config import parse_overrides
from harness.models.source import ModelSource
from harness.models.spec import resolve

HARNESS = Path(__file__).resolve().parents[2] / "harness"
MODEL_CLASS = """
class Echo:
    name = "echo"

    def __init__(self, word="yes"):
        self.word = word

    def identity(self):
        return {"word": self.word}

    def generate(self, prompts, max_new_tokens, stop=()):
        return [self.word for _ in prompts]
"""


def _sources(tmp_path: Path, fast_recipe: list[str]) -> dict[str, ModelSource]:
    weights = tmp_path / "elsewhere.safetensors"
    weights.write_bytes(b"not read until loaded")
    (tmp_path / "echo.py").write_text(MODEL_CLASS)
    hf = tmp_path / "tiny-vlm"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "model.safetensors").write_bytes(b"weights")
    return {
        "registry": resolve("gpt2-frozen", parse_overrides(fast_recipe)),
        "checkpoint": resolve("gpt2-frozen", parse_overrides(fast_recipe), checkpoint=str(weights)),
        "class": resolve(f"{tmp_path / 'echo.py'}:Echo", {"word": "no"}),
        "hf": resolve(f"hf:{hf}"),
    }


def test_every_source_answers_the_one_interface(tiny_hub, fast_recipe, tmp_path):
    sources = _sources(tmp_path, fast_recipe)
    assert all(isinstance(source, ModelSource) for source in sources.values())
    assert {k: s.trains for k, s in sources.items()} == {"registry": True, "checkpoint": False, "class": False,
                                                          "hf": False}  # fmt: skip
    assert [s.name for s in sources.values()] == ["gpt2-frozen", "gpt2-frozen@elsewhere", "echo", "hf:tiny-vlm"]
    assert sources["registry"].train_seed == 0 and sources["class"].train_seed is None
    assert sources["registry"].fingerprint != sources["checkpoint"].fingerprint  # the weights file is in it
    assert sources["class"].folder_name == "echo" and sources["class"].describe()["recipe"] == {"name": "external"}
    # A frozen LM may be split over devices; a model of one's own may not, nor one whose LM trains.
    assert sources["registry"].split_lm_refusal() == ""
    assert "harness's own" in sources["hf"].split_lm_refusal()
    finetuned = resolve("gpt2-finetuned", parse_overrides(fast_recipe))
    assert "trains its LM" in finetuned.split_lm_refusal()


def test_a_class_of_ones_own_loads_with_its_identity_in_its_fingerprint(tiny_hub, fast_recipe, tmp_path):
    source = _sources(tmp_path, fast_recipe)["class"]
    model, loaded = source.load("cpu")
    assert model.generate([["a prompt"]], 3) == ["no"]
    assert loaded.identity == '{"word": "no"}' and loaded.fingerprint != source.fingerprint


def test_no_caller_asks_which_source_a_model_is():
    asks = re.compile(r"\.external\b|spec\.weights\b")
    found = [f"{p.relative_to(HARNESS)}:{i}" for p in HARNESS.rglob("*.py") if p.parent.name != "models"
             for i, line in enumerate(p.read_text().splitlines(), 1) if asks.search(line)]  # fmt: skip
    assert not found, found
