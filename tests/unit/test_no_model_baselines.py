"""The no-model baselines of a few-shot cell, on hand-built prompts whose every value is known."""

from __future__ import annotations

import pytest

from harness import registry
from harness.data.types import Row
from harness.evaluation import baselines
from harness.kinds.base import kind_of

TEN = 10  # a VQA question's human answers: one answer repeated scores 1.0 when matched


def _row(i: int, answer: str, qtype: str = "color", image: str = "") -> Row:
    return Row(f"r{i}", image or f"img{i}", question="q?", answers=(answer,) * TEN, answer_type="other",
               question_type=qtype)  # fmt: skip


@pytest.fixture
def vqa():
    return registry.TASKS.get("easyvqa-tiny")


def test_four_shots_red_blue_red_green_and_a_red_query(vqa):
    support = [_row(1, "red"), _row(2, "blue"), _row(3, "red"), _row(4, "green")]
    pool = support + [_row(5, "blue"), _row(6, "blue"), _row(7, "yes", "shape")]  # blue: the prior of "color"
    priors = baselines.type_priors(kind_of(vqa), pool)
    assert priors == {"color": "blue", "shape": "yes", None: "blue"}
    query = _row(0, "red")
    sample = baselines.stored(vqa, query, support, priors)
    assert sample["support_answers"] == ["red", "blue", "red", "green"]
    assert sample["prior_answer"] == "blue"
    assert sample["baselines"] == {"copy_last": 0.0, "majority": 1.0, "type_prior": 0.0}
    # The run's figures, in points like its score: a second query answered "green" by every human.
    other = _row(9, "green")
    samples = [dict(sample), dict(baselines.stored(vqa, other, support, priors))]
    assert baselines.score(vqa, [query, other], samples) == {"copy_last": 50.0, "majority": 50.0, "type_prior": 0.0}
    assert samples[1]["baselines"] == {"copy_last": 1.0, "majority": 0.0, "type_prior": 0.0}


def test_a_type_the_pool_lacks_gets_the_pools_most_frequent_answer(vqa):
    pool = [_row(1, "red"), _row(2, "no", "count"), _row(3, "no", "count")]
    priors = baselines.type_priors(kind_of(vqa), pool)
    query = _row(0, "no", "size")
    assert baselines.stored(vqa, query, pool[:1], priors)["prior_answer"] == "no"


def test_majority_breaks_ties_by_the_latest_shot_and_priors_by_sorted_order():
    assert baselines.majority(["red", "blue", "blue", "red"]) == "red"
    assert baselines.majority(["red", "blue"]) == "blue"
    assert baselines.majority(["a", "b", "b", "c"]) == "b"
    kind = kind_of(registry.TASKS.get("easyvqa-tiny"))
    forwards = [_row(1, "red"), _row(2, "blue")]
    assert baselines.type_priors(kind, forwards) == baselines.type_priors(kind, forwards[::-1])
    assert baselines.type_priors(kind, forwards)["color"] == "blue"


def test_a_zero_shot_prompt_has_no_baselines(vqa):
    priors = baselines.type_priors(kind_of(vqa), [_row(1, "red")])
    assert baselines.stored(vqa, _row(0, "red"), [], priors) == {}
    assert baselines.type_priors(kind_of(vqa), []) == {}
    assert baselines.score(vqa, [_row(0, "red")], [{"id": "r0", "prediction": "red"}]) == {}


def test_a_run_from_before_the_baselines_has_none(vqa):
    """One sample without what the baselines need (written by an older version): no baseline for the run."""
    support = [_row(1, "red")]
    rows = [_row(0, "red"), _row(9, "red")]
    samples = [baselines.stored(vqa, rows[0], support, {}), {"id": "r9", "prediction": "red"}]
    assert baselines.score(vqa, rows, samples) == {}


def test_naming_copies_the_last_name_its_episode_shows():
    task = registry.TASKS.get("emoji-open-tiny")
    kind = kind_of(task)
    assert kind.baselines == ("copy_last",)  # every name is shown equally often: the majority is the last
    episode = Row("e0", "q", answers=("dax",), answer_type="naming", question_type="2-way",
                  support=(("a", "blicket"), ("b", "dax"), ("c", "dax"), ("d", "blicket")))  # fmt: skip
    assert baselines.type_priors(kind, [episode]) == {}
    sample = baselines.stored(task, episode, [], {})
    assert sample == {"support_answers": ["blicket", "dax", "dax", "blicket"], "baselines": {"copy_last": 0.0}}
    hit = Row("e1", "q", answers=("blicket",), support=episode.support)
    samples = [sample, baselines.stored(task, hit, [], {})]
    assert baselines.score(task, [episode, hit], samples) == {"copy_last": 50.0}


def test_every_kind_names_known_baselines_and_only_vqa_has_type_priors():
    from harness.kinds.base import KINDS

    for name in ("vqa", "caption", "naming"):
        KINDS.get(name)  # registered
    for kind in KINDS.items.values():
        assert set(kind.baselines) <= set(baselines.NAMES), kind.name
        assert ("type_prior" in kind.baselines) == kind.takes_question_types, kind.name
