"""Bring your own model: a class in a file, an entry point, a Hugging Face VLM (a tiny random LLaVA
built here), and weights trained elsewhere (--checkpoint) go through every task kind, few-shot prompts,
tables and the leaderboard unchanged; what they answer is checked against direct calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import paths
from harness.cli.main import main
from harness.errors import HarnessError
from harness.prompt import Image
from tests.tiny_lm import write_tiny_llava

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "text_only_lm.py"


@pytest.fixture(scope="module")
def llava(tmp_path_factory) -> Path:
    return write_tiny_llava(tmp_path_factory.mktemp("llava") / "tiny-llava")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A results store of its own: these models' rows stay out of the other tests' tables."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _samples(task: str, model_folder: str) -> list[dict]:
    files = sorted((paths.home() / "runs" / task / model_folder).glob("*/samples.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def _prompts(task_name: str, shots: int, n: int) -> list:
    """The harness's own prompts for the first n queries of a task (with seeded few-shot support)."""
    from harness import registry
    from harness.evaluation import tasks
    from harness.evaluation.fewshot import draw_support

    task = registry.TASKS.get(task_name)
    dataset = tasks.load(task)
    pool = tasks.support_pool(task, dataset)
    rows = tasks.rows(task, dataset, 0)[:n]
    return [tasks.build_prompt(task, dataset, r, draw_support(task.name, 0, r, pool, shots)) for r in rows]


# ---- the Hugging Face adapter ------------------------------------------------------------------------
def _adapter(folder: Path, **kwargs):
    from harness.models import external
    from harness.models.spec import resolve

    spec = resolve(f"hf:{folder}", kwargs)
    assert isinstance(spec, external.ExternalSpec)
    return external.load(spec, "cpu")


@pytest.mark.slow
def test_hf_adapter_answers_as_a_direct_call_and_batching_changes_nothing(llava, home):
    model, spec = _adapter(llava)
    assert spec.name == "hf:tiny-llava" and spec.origin.startswith("local:")
    prompts = _prompts("easyvqa-tiny", 1, 6)  # 1-shot: two images in each prompt, prompts of several lengths
    assert all(sum(isinstance(s, Image) for s in p) == 2 for p in prompts)
    batched = model.generate(prompts, 6, ["\n"])
    alone = [model.generate([p], 6, ["\n"])[0] for p in prompts]
    assert batched == alone and any(batched)
    # The same as calling transformers by hand with the images written as <image> in place.
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(llava)
    direct = AutoModelForImageTextToText.from_pretrained(llava).eval()
    prompt = prompts[0]
    text = "".join("<image>" if isinstance(s, Image) else s for s in prompt)
    images = [s.pixels.numpy() for s in prompt if isinstance(s, Image)]
    inputs = processor(text=[text], images=images, return_tensors="pt")
    out = direct.generate(**inputs, max_new_tokens=6, do_sample=False, pad_token_id=0)
    expected = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert batched[0] == expected.lstrip().split("\n")[0].strip()
    # Log-likelihoods: batched (left-padded) = one at a time = a plain forward pass by hand.
    continuations = [" red", " a blue circle", " yes", " no", " green", " triangle"]
    scores = model.loglikelihood(prompts, continuations)
    one = [model.loglikelihood([p], [c])[0] for p, c in zip(prompts, continuations)]
    assert scores == pytest.approx(one, abs=1e-4)
    cont = processor.tokenizer(continuations[0], add_special_tokens=False)["input_ids"]
    ids = torch.cat([processor(text=[text], images=images, return_tensors="pt")["input_ids"], torch.tensor([cont])], 1)
    with torch.no_grad():
        logits = direct(input_ids=ids, pixel_values=inputs["pixel_values"]).logits[0].float()
    by_hand = torch.log_softmax(logits[-len(cont) - 1 : -1], -1).gather(-1, torch.tensor(cont)[:, None]).sum().item()
    assert scores[0] == pytest.approx(by_hand, abs=1e-4)


@pytest.mark.slow
def test_hf_model_runs_every_task_kind_and_joins_the_tables(llava, home, capsys):
    for task, shots in [("easyvqa-tiny", "0,1"), ("miniimagenet-open-tiny", "1"), ("coco-tiny", "0")]:
        args = ["run", "--task", task, "--model", f"hf:{llava}", "--shots", shots, "--limit", "8", "--quiet",
                "--images", "both"]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "hf:tiny-llava" in out and "images blacked out" in out
    samples = _samples("easyvqa-tiny", "hf-tiny-llava")
    assert len(samples) == 4 * 8 and all("<image:" in s["prompt"] for s in samples)
    one_shot = [s for s in samples if s["prompt"].count("<image:") == 2]
    assert len(one_shot) == 16  # the 1-shot prompts carry the support image in front
    naming = _samples("miniimagenet-open-tiny", "hf-tiny-llava")
    assert naming and "This is a" in naming[0]["prompt"]
    assert main(["table", "--no-published"]) == 0
    table = capsys.readouterr().out
    assert "hf:tiny-llava" in table and "coco-tiny" in table
    assert main(["leaderboard", "--csv", str(home / "board.csv")]) == 0
    board = (home / "board.csv").read_text()
    assert "hf:tiny-llava" in board and ",external," in board
    # Run again: every run is read back, nothing is generated again.
    before = sorted(p.stat().st_mtime_ns for p in (home / "runs").rglob("samples.jsonl"))
    assert main(["run", "--task", "easyvqa-tiny", "--model", f"hf:{llava}", "--shots", "0,1", "--limit", "8",
                 "--quiet"]) == 0  # fmt: skip
    assert sorted(p.stat().st_mtime_ns for p in (home / "runs").rglob("samples.jsonl")) == before


def test_a_prompt_too_long_for_the_hf_model_is_one_line(tmp_path, home, capsys):
    short = write_tiny_llava(tmp_path / "short-llava", max_positions=80)
    assert (
        main(["run", "--task", "easyvqa-tiny", "--model", f"hf:{short}", "--shots", "4", "--limit", "2", "--quiet"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "exceeds the LM's context of 80" in err and "shots fit" in err and "\n" not in err, err


# ---- a class in a file, and an entry point ---------------------------------------------------------
def test_a_model_in_a_file_answers_as_its_lm_does_and_a_changed_file_is_a_new_model(tiny_hub, tmp_path, home, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness import registry
    from harness.prompt import describe

    copy = tmp_path / "my_model.py"
    copy.write_text(EXAMPLE.read_text())
    args = ["run", "--task", "easyvqa-tiny", "--model", f"{copy}:TextOnlyLM", "--set", f"lm={tiny_hub['gpt2']}",
            "--shots", "0,1", "--limit", "6", "--images", "real", "--quiet"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    samples = _samples("easyvqa-tiny", "text-only-" + tiny_hub["gpt2"].name)
    assert len(samples) == 12
    # The answer is what the LM says to the prompt's text alone (a space where the image was).
    lm, tok = (
        AutoModelForCausalLM.from_pretrained(tiny_hub["gpt2"]).eval(),
        AutoTokenizer.from_pretrained(tiny_hub["gpt2"]),
    )
    [prompt] = _prompts("easyvqa-tiny", 0, 1)
    text = "".join(" " if isinstance(s, Image) else s for s in prompt).strip()
    ids = torch.tensor([[tok.bos_token_id, *tok(text)["input_ids"]]])
    new_tokens = registry.TASKS.get("easyvqa-tiny").max_new_tokens
    out = lm.generate(ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    expected = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).lstrip().split("\n")[0].strip()
    [first] = [s for s in samples if s["prompt"] == describe(prompt)]
    assert first["prediction"] == expected
    folders = set((home / "runs" / "easyvqa-tiny").rglob("samples.jsonl"))
    copy.write_text(EXAMPLE.read_text() + "\n# changed\n")  # a changed file is another model: answered again
    assert main(args) == 0
    assert len(set((home / "runs" / "easyvqa-tiny").rglob("samples.jsonl")) - folders) == 2


@pytest.mark.slow
def test_an_entry_point_registers_a_model(tiny_hub, tmp_path, home):
    site = tmp_path / "site"
    (site / "mymodels").mkdir(parents=True)
    (site / "mymodels" / "__init__.py").write_text(EXAMPLE.read_text())
    dist = site / "mymodels-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mymodels\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[frozen_harness.models]\nblind-gpt2 = mymodels:TextOnlyLM\n")
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-m", "harness", "run", "--task", "miniimagenet-open-tiny", "--model", "blind-gpt2",
           "--set", f"lm={tiny_hub['gpt2']}", "--limit", "4", "--images", "real", "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "text-only-" in done.stdout and "miniimagenet-open-tiny" in done.stdout
    [metrics] = (home / "runs" / "miniimagenet-open-tiny").glob("*/*/metrics.json")
    config = json.loads((metrics.parent / "config.json").read_text())
    assert config["model"]["source"] == "entry point" and config["model"]["origin"] == "mymodels 1.0"


def test_bad_models_of_your_own_are_one_line(tmp_path, home, capsys, llava):
    (tmp_path / "broken.py").write_text("class M:\n    def generate(self, prompts\n")
    (tmp_path / "imports.py").write_text("import no_such_package_here\n")
    (tmp_path / "models.py").write_text(
        "class NoGenerate:\n    pass\n\n"
        "class TooFew:\n    def generate(self, prompts, max_new_tokens, stop):\n        return ['x']\n"
    )
    (tmp_path / "empty").mkdir()
    base = ["run", "--task", "easyvqa-tiny", "--limit", "3", "--quiet", "--images", "real", "--model"]
    cases = [
        ([f"{tmp_path}/missing.py:M"], "no file"),
        ([f"{tmp_path}/models.py:Nope"], "no class 'Nope'"),
        ([f"{tmp_path}/broken.py:M"], "broken.py:2"),
        ([f"{tmp_path}/imports.py:M"], "importing it failed"),
        ([f"{tmp_path}/models.py:NoGenerate"], "has no generate("),
        ([f"{tmp_path}/models.py:TooFew"], "returned 1 answers for 3 prompts"),
        ([f"{tmp_path}/models.py:TooFew", "--set", "size=3"], "unexpected keyword argument 'size'"),
        ([f"hf:{tmp_path}/empty"], "no config.json"),
        (["hf:someone/not-in-the-cache"], "is not on this machine"),
        ([f"hf:{llava}", "--set", "prompt_style=chat"], "needs a chat template"),
        ([f"hf:{llava}", "--lm-path", str(tmp_path)], "--lm-path and --checkpoint are for"),
        ([f"hf:{llava}", "--lm-device-map", "auto"], "--lm-device-map is for the harness's own"),
    ]
    for extra, expected in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err and "Traceback" not in err, (extra, err)
    assert main(["train", "--model", f"hf:{llava}"]) == 2
    assert "trained elsewhere" in capsys.readouterr().err


# ---- weights trained elsewhere: --checkpoint ------------------------------------------------------------
@pytest.mark.slow
def test_a_checkpoint_trained_elsewhere_loads_with_a_shape_check(tiny_hub, fast_recipe, tmp_path, home, capsys):
    from safetensors.torch import load_file, save_file

    sets = [a for s in fast_recipe for a in ("--set", s)]
    args = ["--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--images", "real", "--limit", "10", "--shots", "1",
            "--quiet", *sets]  # fmt: skip
    assert main(["run", *args]) == 0
    ours = {s["id"]: s["prediction"] for s in _samples("easyvqa-tiny", "gpt2-frozen")}
    [written] = (home / "checkpoints").glob("gpt2-frozen-*/checkpoint.safetensors")
    model_part = {k[6:]: v for k, v in load_file(written).items() if k.startswith("model/")}
    assert sorted({k.partition(".")[0] for k in model_part}) == ["encoder", "prefix_map"]
    plain = tmp_path / "elsewhere.safetensors"
    save_file(model_part, plain)  # what another codebase would write: the trained parts, by name
    assert main(["eval", *args, "--checkpoint", str(plain)]) == 0
    out = capsys.readouterr().out
    assert "gpt2-frozen@elsewhere" in out
    assert {s["id"]: s["prediction"] for s in _samples("easyvqa-tiny", "gpt2-frozen@elsewhere")} == ours
    assert main(["eval", *args, "--checkpoint", str(written)]) == 0  # the harness's own file works too
    assert {s["id"]: s["prediction"] for s in _samples("easyvqa-tiny", "gpt2-frozen@checkpoint")} == ours

    def refused(tensors: dict | bytes, expected: str, extra: tuple = ()) -> None:
        bad = tmp_path / "bad.safetensors"
        bad.unlink(missing_ok=True)
        bad.write_bytes(tensors) if isinstance(tensors, bytes) else save_file(tensors, bad)
        assert main(["eval", *args, *extra, "--checkpoint", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "bad.safetensors" in err and "\n" not in err, err

    weight = model_part["prefix_map.weight"]
    refused({**model_part, "prefix_map.weight": torch.zeros(weight.shape[0] + 32, weight.shape[1])},
            f"'prefix_map.weight' has shape [{weight.shape[0] + 32}, {weight.shape[1]}]")  # fmt: skip
    refused({k: v for k, v in model_part.items() if k.startswith("prefix_map.")}, "no tensor 'encoder.")
    refused({**model_part, "lm.lm_head.weight": torch.zeros(3, 3)}, "does not train the lm")
    refused({**model_part, "adapter.weight": torch.zeros(3)}, "no such tensor in the model")
    refused(b"\x00" * 64, "not a readable safetensors file")
    assert main(["train", "--model", "gpt2-frozen", "--checkpoint", str(plain)]) == 2
    assert "trained elsewhere" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="no such file"):
        from harness.models.spec import resolve

        resolve("gpt2-frozen", checkpoint=str(tmp_path / "none.safetensors"))


@pytest.mark.slow
def test_a_check_cell_names_a_checkpoint_relative_to_its_file(tiny_hub, fast_recipe, tmp_path, home, capsys):
    import yaml
    from safetensors.torch import load_file, save_file

    from harness.config import parse_overrides

    sets = [a for s in fast_recipe for a in ("--set", s)]
    assert main(["train", "--model", "gpt2-frozen", "--quiet", *sets]) == 0
    [written] = (home / "checkpoints").glob("gpt2-frozen-*/checkpoint.safetensors")
    (tmp_path / "weights").mkdir()
    save_file({k[6:]: v for k, v in load_file(written).items() if k.startswith("model/")},
              tmp_path / "weights" / "mine.safetensors")  # fmt: skip
    cell = {
        "task": "easyvqa-tiny",
        "model": "gpt2-frozen",
        "shots": 1,
        "limit": 10,
        "set": parse_overrides(fast_recipe),
    }
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(yaml.safe_dump({"cells": [cell, {**cell, "checkpoint": "weights/mine.safetensors"}]}))
    capsys.readouterr()
    assert main(["check", "--baseline", str(baseline), "--update"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "easyvqa-tiny gpt2-frozen@mine real 1-shot" in out, out
    first, second = yaml.safe_load(baseline.read_text())["cells"]
    assert second["checkpoint"] == "weights/mine.safetensors" and second["expected"] == first["expected"]
    assert main(["check", "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "none regressed" in out and out.count("read back") >= 1, out
    assert (home / "runs" / "easyvqa-tiny" / "gpt2-frozen@mine").is_dir()
    baseline.write_text(baseline.read_text().replace("weights/mine", "weights/gone"))
    assert main(["check", "--baseline", str(baseline)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cell 2" in err and "gone.safetensors: no such file" in err and "\n" not in err, err


@pytest.mark.slow
def test_a_sweep_grid_runs_checkpoints_trained_elsewhere(tiny_hub, fast_recipe, tmp_path, home, capsys):
    import yaml
    from safetensors.torch import load_file, save_file

    from harness.config import parse_overrides

    sets = [a for s in fast_recipe for a in ("--set", s)]
    assert main(["train", "--model", "gpt2-frozen", "--quiet", *sets]) == 0
    [written] = (home / "checkpoints").glob("gpt2-frozen-*/checkpoint.safetensors")
    save_file(
        {k[6:]: v for k, v in load_file(written).items() if k.startswith("model/")}, tmp_path / "mine.safetensors"
    )
    grid = {"tasks": ["easyvqa-tiny"], "shots": [0, 1], "images": ["real"], "limit": 6, "set": parse_overrides(fast_recipe),
            "checkpoints": [{"model": "gpt2-frozen", "checkpoint": "mine.safetensors"}]}  # fmt: skip
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    assert main(["sweep", str(path), "--quiet"]) == 0, capsys.readouterr().err
    assert "2 cells done" in capsys.readouterr().out
    runs = home / "runs" / "easyvqa-tiny" / "gpt2-frozen@mine"
    assert len(list(runs.iterdir())) == 2
    # The same cell from the command line is the same run: read back, not made again.
    assert main(["eval", "--task", "easyvqa-tiny", "--model", "gpt2-frozen", "--checkpoint", str(tmp_path / "mine.safetensors"),
                 "--shots", "1", "--images", "real", "--limit", "6", "--quiet", *sets]) == 0  # fmt: skip
    assert "gpt2-frozen@mine" in capsys.readouterr().out and len(list(runs.iterdir())) == 2
    for entry, expected in [
        ({"model": "gpt2-frozen", "checkpoint": "gone.safetensors"}, "checkpoints entry 1: --checkpoint"),
        ({"model": "gpt2-frozen", "file": "mine.safetensors"}, "checkpoints entry 1: unknown field 'file'"),
        (
            {"model": "gpt2-frozen", "checkpoint": "mine.safetensors", "set": {"n_prefix": 2}},
            "'prefix_map.bias' has shape",
        ),
    ]:
        path.write_text(yaml.safe_dump({**grid, "checkpoints": [entry]}))
        assert main(["sweep", str(path), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err, err
    path.write_text(yaml.safe_dump({**grid, "checkpoints": []}))
    assert main(["sweep", str(path), "--quiet"]) == 2
    assert "no models and no checkpoints" in capsys.readouterr().err


# ---- the harness's own model implements the same interface ------------------------------------------------
def test_the_prefix_models_loglikelihood_is_the_full_vocabulary_sum(tiny_hub, fast_recipe, home):
    from harness.config import parse_overrides
    from harness.models.loading import build
    from harness.models.spec import resolve

    model = build(resolve("gpt2-frozen", parse_overrides(fast_recipe)), "cpu")
    prompts = _prompts("easyvqa-tiny", 1, 4)
    continuations = [" red", " a blue circle", " yes", " no"]
    scores = model.loglikelihood(prompts, continuations)
    for prompt, continuation, score in zip(prompts, continuations, scores):
        with torch.no_grad():
            batch = model.embed([prompt], [continuation], target_eos=False)
            logits = model.lm(inputs_embeds=batch.embeds).logits[0].float()
        labels = batch.labels[0]
        positions = (labels != -100).nonzero()[:, 0]
        expected = torch.log_softmax(logits[positions - 1], -1).gather(-1, labels[positions][:, None]).sum().item()
        assert score == pytest.approx(expected, abs=1e-4)
    assert model.context_length() == 256 and model.prompt_lengths(prompts[:1])[0] > 10


# ---- naming by ranking the episode's names (the interface's optional loglikelihood) -------------------------
def test_naming_by_rank_picks_the_most_likely_name_and_is_its_own_column(llava, tmp_path, home, capsys):
    from harness import registry
    from harness.config import replace_fields
    from harness.evaluation import tasks
    from harness.evaluation.fewshot import draw_support

    args = ["run", "--task", "miniimagenet-open-tiny", "--model", f"hf:{llava}", "--limit", "6", "--images", "real",
            "--quiet", "--task-set", "answer=rank"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    samples = {s["id"]: s for s in _samples("miniimagenet-open-tiny", "hf-tiny-llava")}
    task = registry.TASKS.get("miniimagenet-open-tiny")
    task = replace_fields(task, {"options": {**task.options, "answer": "rank"}}, "test")
    dataset = tasks.load(task)
    model, _ = _adapter(llava)
    for row in tasks.rows(task, dataset, 0)[:6]:
        names = sorted({n for _, n in row.support})
        prompt = tasks.build_prompt(task, dataset, row, draw_support(task.name, 0, row, [], 0))
        scores = [model.loglikelihood([prompt], [f" {n}"])[0] for n in names]
        assert samples[row.id]["prediction"] == names[scores.index(max(scores))]
    assert main(["table", "--no-published"]) == 0
    assert "2-way (ranked)" in capsys.readouterr().out
    (tmp_path / "gen_only.py").write_text(
        "class GenOnly:\n    def generate(self, prompts, max_new_tokens, stop):\n        return ['dax'] * len(prompts)\n"
    )
    for model_name, expected in [(f"{tmp_path}/gen_only.py:GenOnly", "has no loglikelihood"),
                                 (f"hf:{llava}", "answer=best (expected generate or rank)")]:  # fmt: skip
        bad = ["--task-set", "answer=best"] if model_name.startswith("hf:") else []
        assert main([*args, "--model", model_name, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err, err


@pytest.mark.slow
def test_a_model_of_your_own_in_a_sweep_a_check_and_the_report(llava, tmp_path, home, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"tasks: [easyvqa-tiny]\nmodels: ['hf:{llava}']\nshots: [0, 1]\nseeds: [0]\nimages: [real, black]\nlimit: 6\n"
        "set: {steps: 3}\n"  # a grid's recipe overrides are not the external model's arguments
    )
    assert main(["sweep", str(grid), "--quiet"]) == 0, capsys.readouterr().err
    assert "4 cells done" in capsys.readouterr().out
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(
        f"tolerance: 1.0\ncells:\n  - task: easyvqa-tiny\n    model: 'hf:{llava}'\n    shots: 1\n    limit: 6\n"
    )
    assert main(["check", "--baseline", str(baseline), "--update"]) == 0, capsys.readouterr().err
    assert main(["check", "--baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "read back" in out and "none regressed" in out, out
    assert main(["report", "--out", str(tmp_path / "report"), "--samples", "2"]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "hf:tiny-llava" in page and "data:image/png;base64," in page
