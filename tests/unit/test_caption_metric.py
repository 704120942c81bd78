"""Tests for harness.metrics.caption: it must give exactly what pycocoevalcap's COCOEvalCap gives.

The tokenizer and METEOR start JVMs, so the expensive runs happen once per module.
"""

from __future__ import annotations

import contextlib
import io
import math

import pytest
from pycocoevalcap import eval as cocoeval
from pycocotools.coco import COCO

from harness.errors import HarnessError
from harness.metrics import caption
from harness.metrics.caption import (
    METRICS,
    score_captions,
    score_per_image,
    spice_available,
)

REFERENCES: dict[str, list[str]] = {
    "101": [
        "A man riding a wave on top of a surfboard.",
        "A surfer rides a large wave in the ocean.",
        "A person on a surfboard riding a wave.",
        "Surfer in a black wetsuit catching a wave.",
        "A man surfing on a big blue wave.",
    ],
    "102": [
        "Two dogs playing with a frisbee in the grass.",
        "A pair of dogs chase a red frisbee on a lawn.",
        "Two dogs run across a field after a frisbee.",
        "Dogs playing fetch with a flying disc in a park.",
        "Two brown dogs playing in a grassy yard.",
    ],
    "103": [
        "A plate of food with broccoli and rice.",
        "A white plate topped with rice, chicken and broccoli.",
        "A meal of chicken, broccoli and rice on a plate.",
        "Healthy dinner of rice and vegetables on a dish.",
        "A close up of a plate of food on a table.",
    ],
    "104": [
        "A red double decker bus driving down a city street.",
        "A double-decker bus on a busy street.",
        "A red bus travels down the road in London.",
        "The big red bus is parked next to the sidewalk.",
        "A tour bus driving past tall buildings.",
    ],
    "105": [
        "A cat sleeping on top of a laptop keyboard.",
        "A grey cat lying on an open laptop computer.",
        "A kitten naps on the keys of a laptop.",
        "A cat curled up on a computer on a desk.",
        "The cat is resting on the laptop.",
    ],
    "106": [
        "A kitchen with wooden cabinets and a white stove.",
        "A small kitchen with a stove, sink and cabinets.",
        "An empty kitchen with brown cupboards.",
        "A clean kitchen with an oven and a refrigerator.",
        "Kitchen interior with wood cabinets and appliances.",
    ],
}

CANDIDATES: dict[str, str] = {
    "101": "A man riding a wave on top of a surfboard.",  # equal to a reference
    "102": "Two dogs are playing with a frisbee on the grass.",  # close
    "103": "A plate with rice and some vegetables.",  # fair
    "104": "A bus on a street",  # short, no punctuation
    "105": "A DOG sitting, in a car!",  # wrong, odd case and punctuation
    "106": "Umbrella.",  # bad
}


def _coco_eval_cap(monkeypatch: pytest.MonkeyPatch) -> cocoeval.COCOEvalCap:
    """Run COCOEvalCap.evaluate itself on REFERENCES/CANDIDATES, with SPICE (which cannot run here) stubbed."""

    class NoSpice:  # Spice() would try to download Stanford CoreNLP
        def compute_score(self, gts: dict, res: dict) -> tuple[float, list[float]]:
            return math.nan, [math.nan] * len(gts)

        def method(self) -> str:
            return "SPICE"

    monkeypatch.setattr(cocoeval, "Spice", NoSpice)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            "images": [{"id": i} for i in REFERENCES],
            "annotations": [
                {"image_id": i, "id": n, "caption": c}
                for n, (i, c) in enumerate(((i, c) for i, refs in REFERENCES.items() for c in refs), start=1)
            ],
        }
        coco.createIndex()
        coco_res = coco.loadRes([{"image_id": i, "caption": c} for i, c in CANDIDATES.items()])
        evaluator = cocoeval.COCOEvalCap(coco, coco_res)
        evaluator.evaluate()
    return evaluator


@pytest.fixture(scope="module")
def ours() -> dict[str, float]:
    return score_captions(REFERENCES, CANDIDATES)


@pytest.fixture(scope="module")
def ours_per_image() -> dict[str, dict[str, float]]:
    return score_per_image(REFERENCES, CANDIDATES)


@pytest.mark.slow
def test_equals_coco_eval_cap(
    monkeypatch: pytest.MonkeyPatch, ours: dict[str, float], ours_per_image: dict[str, dict[str, float]]
) -> None:
    reference = _coco_eval_cap(monkeypatch)
    expected = {k: v for k, v in reference.eval.items() if k != "SPICE"}
    assert set(ours) - {"SPICE"} == set(expected) == set(METRICS)
    for metric in METRICS:
        assert ours[metric] == expected[metric], metric  # exact: same code on the same tokens
        assert type(ours[metric]) is float
        assert metric == "CIDEr" or 0.0 <= ours[metric] <= 1.0  # CIDEr is not bounded by 1
    assert set(ours_per_image) == set(REFERENCES)
    for image_id, scores in ours_per_image.items():
        assert scores == {
            "Bleu_4": reference.imgToEval[image_id]["Bleu_4"],
            "CIDEr": reference.imgToEval[image_id]["CIDEr"],
        }, image_id


def test_perfect_candidate_beats_bad_one(ours: dict[str, float], ours_per_image: dict[str, dict[str, float]]) -> None:
    assert ours_per_image["101"]["CIDEr"] > ours_per_image["106"]["CIDEr"]
    assert ours_per_image["101"]["Bleu_4"] > ours_per_image["106"]["Bleu_4"]
    assert 0.0 < ours["CIDEr"] and 0.0 < ours["Bleu_1"] < 1.0


@pytest.mark.parametrize(
    ("references", "candidates", "message"),
    [
        ({"1": ["a cat"], "2": ["a dog"]}, {"1": "a cat"}, "'2' has references but no candidate"),
        ({"1": ["a cat"]}, {"1": "a cat", "3": "a dog"}, "'3' has a candidate but no references"),
        ({"1": ["a cat"], "2": []}, {"1": "a cat", "2": "a dog"}, "'2' needs a non-empty list"),
        ({"1": "a cat"}, {"1": "a cat"}, "'1' needs a non-empty list"),
        ({}, {}, "at least one image id"),
    ],
)
def test_bad_ids_raise(references: dict, candidates: dict, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        score_captions(references, candidates)


def test_missing_java_is_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caption.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(HarnessError) as info:
        score_captions({"1": ["a cat"]}, {"1": "a cat"})
    message = str(info.value)
    assert "\n" not in message
    assert "Java" in message and "apt-get install default-jre-headless" in message


def test_spice_left_out_when_it_cannot_run(ours: dict[str, float]) -> None:
    if spice_available():
        pytest.skip("Stanford CoreNLP jars for SPICE are installed here")
    assert "SPICE" not in ours
    assert list(ours) == list(METRICS)


def test_carriage_return_does_not_shift_later_captions() -> None:
    # pycocoevalcap only replaces '\n'; a '\r' would split the line and move "a dog" onto image "2"'s slot.
    refs = {"1": ["a cat on a mat"], "2": ["a dog in a park"]}
    with_cr = score_per_image(refs, {"1": "a cat\ron a mat", "2": "a dog in a park"})
    with_space = score_per_image(refs, {"1": "a cat on a mat", "2": "a dog in a park"})
    assert with_cr == with_space
