"""Tests for harness.metrics.vqa.

Two kinds: expectations worked out by hand from the official VQA evaluation
script's rules (GT-Vision-Lab/VQA at commit a013f00,
PythonEvaluationTools/vqaEvaluation/vqaEval.py), and a comparison with the
outputs of that script itself, stored in vqa_official_cases.json beside this
file (generated outside the repository by running the reference under
Python 2.7; its header says how)."""

from __future__ import annotations

import functools
import json
import math
import re
import string
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.metrics import vqa
from harness.metrics.vqa import (
    ARTICLES,
    CONTRACTIONS,
    NUMBER_WORDS,
    PUNCTUATION,
    aggregate,
    aggregate_by_type,
    normalize_answer,
    official_round,
    process_digit_article,
    process_punctuation,
    vqa_accuracy,
)

CURLY = "\u2019"


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def test_punctuation_list_is_the_official_one_in_order() -> None:
    assert PUNCTUATION == (
        ";",
        "/",
        "[",
        "]",
        '"',
        "{",
        "}",
        "(",
        ")",
        "=",
        "+",
        "\\",
        "_",
        "-",
        ">",
        "<",
        "@",
        "`",
        ",",
        "?",
        "!",
    )
    # Neither apostrophe, colon nor period is in the list.
    assert "'" not in PUNCTUATION and ":" not in PUNCTUATION and "." not in PUNCTUATION


def test_contractions_table_uses_only_straight_apostrophes() -> None:
    # At a013f00 every apostrophe in the table is U+0027 (an older version of
    # the script had curly ones in most entries, e.g. "dont" -> "don’t").
    assert len(CONTRACTIONS) == 120
    assert CONTRACTIONS["dont"] == "don't"
    assert CONTRACTIONS["cant"] == "can't"
    assert CONTRACTIONS["weve"] == "we've"
    assert CONTRACTIONS["wheres"] == "where's"
    assert CONTRACTIONS["whove"] == "who've"
    assert CONTRACTIONS["couldn'tve"] == "couldn't've"
    assert CONTRACTIONS["somebody'd"] == "somebodyd"
    assert not any(CURLY in key + value for key, value in CONTRACTIONS.items())


# --------------------------------------------------------------------------
# Unanimous answers: raw comparison, no normalisation of either side
# --------------------------------------------------------------------------


def test_unanimous_answers_are_compared_case_sensitively() -> None:
    assert vqa_accuracy("Yes", ["yes"] * 10) == 0.0
    assert vqa_accuracy("yes", ["yes"] * 10) == 1.0


def test_unanimous_answers_do_not_map_number_words() -> None:
    assert vqa_accuracy("2", ["two"] * 10) == 0.0
    assert vqa_accuracy("two", ["two"] * 10) == 1.0


def test_unanimous_answers_do_not_strip_punctuation_or_articles() -> None:
    assert vqa_accuracy("yes", ["yes."] * 10) == 0.0
    assert vqa_accuracy("dog", ["a dog"] * 10) == 0.0


def test_whitespace_cleaning_applies_even_when_unanimous() -> None:
    # Step 1 (newline/tab -> space, strip) is applied to both sides always.
    assert vqa_accuracy(" yes\n", ["yes"] * 10) == 1.0
    assert vqa_accuracy("yes", ["\tyes "] * 10) == 1.0
    # Inner tab becomes a single space, which then matches "red car".
    assert vqa_accuracy("red\tcar", ["red car"] * 10) == 1.0


def test_answers_unanimous_only_after_whitespace_cleaning_stay_raw() -> None:
    # "yes" and "yes\n" are the same after step 1, so the set has one
    # element and "Yes" is compared raw (case-sensitively).
    assert vqa_accuracy("Yes", ["yes"] * 5 + ["yes\n"] * 5) == 0.0


# --------------------------------------------------------------------------
# Non-unanimous answers: both sides normalised
# --------------------------------------------------------------------------


def test_disagreeing_answers_normalise_case() -> None:
    assert vqa_accuracy("Yes", ["yes"] * 9 + ["no"]) == 1.0


def test_disagreeing_answers_drop_articles() -> None:
    # "a dog" and "the dog" both normalise to "dog": 7 matches, so every
    # position has >= 6 matching others -> 1.0.
    answers = ["a dog"] * 4 + ["the dog"] * 3 + ["cat"] * 3
    assert vqa_accuracy("dog", answers) == 1.0
    assert vqa_accuracy("An dog", answers) == 1.0


def test_disagreeing_answers_map_number_words() -> None:
    assert vqa_accuracy("2", ["two"] * 9 + ["3"]) == 1.0
    assert vqa_accuracy("0", ["none"] * 5 + ["zero"] * 5) == 1.0
    assert normalize_answer("none") == "0"
    assert normalize_answer("Ten") == "10"
    # Only whole words are mapped.
    assert normalize_answer("twenty") == "twenty"
    assert normalize_answer("someone") == "someone"


def test_disagreeing_answers_expand_contractions_with_straight_apostrophe() -> None:
    assert normalize_answer("dont") == "don't"
    assert normalize_answer("DONT") == "don't"
    assert normalize_answer("couldnt") == "couldn't"
    answers = ["dont"] * 5 + ["no"] * 5
    assert vqa_accuracy("dont", answers) == 1.0
    # "dont" expands to the straight "don't", so the two agree ...
    assert normalize_answer("don't") == "don't"
    assert vqa_accuracy("don't", answers) == 1.0
    assert vqa_accuracy("dont", ["don't"] * 5 + ["no"] * 5) == 1.0
    # ... while a curly "don’t" is left alone and matches neither.
    assert normalize_answer("don" + CURLY + "t") == "don" + CURLY + "t"
    assert vqa_accuracy("don" + CURLY + "t", answers) == 0.0


def test_capitalised_contraction_keys_are_unreachable() -> None:
    # "Im" is a key, but words are lower-cased before the lookup.
    assert normalize_answer("Im") == "im"
    assert normalize_answer("Ive") == "ive"


def test_number_word_mapping_precedes_contractions_and_articles() -> None:
    assert process_digit_article("The  ONE   dog") == "1 dog"
    assert process_digit_article("a an the") == ""


# --------------------------------------------------------------------------
# Averaging over "the other answers"
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        # k matches among 10: the k matching positions see k-1 matching
        # others, the 10-k others see k.
        (0, 0.0),
        (1, 0.3),  # (1*0 + 9*(1/3)) / 10
        (2, 0.6),  # (2*(1/3) + 8*(2/3)) / 10 = 6/10
        (3, 0.9),  # (3*(2/3) + 7*1) / 10 = 9/10
        (4, 1.0),  # (4*1 + 6*1) / 10
        (10, 1.0),
    ],
)
def test_other_nine_averaging(matches: int, expected: float) -> None:
    answers = ["yes"] * matches + ["no"] * (10 - matches)
    if matches == 10:
        answers[-1] = "Yes"  # keep it non-unanimous; normalises to "yes"
    assert vqa_accuracy("yes", answers) == pytest.approx(expected)


def test_matching_answer_position_order_does_not_matter() -> None:
    assert vqa_accuracy("yes", ["no"] * 8 + ["yes"] * 2) == pytest.approx(0.6)
    assert vqa_accuracy("yes", ["no", "yes"] * 5) == 1.0


def test_duplicate_answers_only_exclude_their_own_position() -> None:
    # Two identical "yes" answers: each still counts the other one.
    assert vqa_accuracy("yes", ["yes", "yes", "no"]) == pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3)


def test_single_answer_never_scores() -> None:
    # With one answer there are no "other" answers to match.
    assert vqa_accuracy("yes", ["yes"]) == 0.0


def test_two_answers() -> None:
    # Unanimous: each position sees one matching other -> 1/3.
    assert vqa_accuracy("yes", ["yes", "yes"]) == pytest.approx(1 / 3)
    # Non-unanimous: only the "no" position sees a matching "yes".
    assert vqa_accuracy("yes", ["yes", "no"]) == pytest.approx(1 / 6)


def test_empty_answers_raise() -> None:
    with pytest.raises(ValueError):
        vqa_accuracy("yes", [])


# --------------------------------------------------------------------------
# process_punctuation
# --------------------------------------------------------------------------


def test_punctuation_without_adjacent_space_becomes_space() -> None:
    assert process_punctuation("a-b") == "a b"
    assert process_punctuation("yes!") == "yes "
    assert normalize_answer("t-shirt") == "t shirt"


def test_punctuation_with_adjacent_space_is_deleted() -> None:
    assert process_punctuation("a - b") == "a  b"
    assert process_punctuation("yes !") == "yes "
    # ")" is followed by a space, so it is deleted; "(" opens the text with
    # no space on either side, so it becomes a space.
    assert process_punctuation("(left) side") == " left side"


def test_one_spaced_occurrence_deletes_every_occurrence_of_that_mark() -> None:
    # " -" occurs once, so both hyphens are deleted, including "x-y".
    assert process_punctuation("x-y -z") == "xy z"


def test_punctuation_condition_reads_the_original_text() -> None:
    # ';' has no space beside it, so it becomes a space: "a /b". The '/' now
    # has a space before it in the working text, but the original "a;/b" has
    # neither "/ " nor " /", so '/' is also replaced by a space (two spaces),
    # not deleted (which would give one space).
    assert process_punctuation("a;/b") == "a  b"


def test_digit_comma_deletes_all_punctuation() -> None:
    assert process_punctuation("1,000") == "1000"
    assert normalize_answer("1,000") == "1000"
    # A digit,digit anywhere makes every mark be deleted, even unspaced ones.
    assert process_punctuation("a-b 1,2") == "ab 12"
    assert process_punctuation("1,000 (approx)") == "1000 approx"
    # Without a digit on both sides, the comma is an ordinary mark.
    assert process_punctuation("a,b") == "a b"
    assert process_punctuation("1, 2") == "1 2"


def test_apostrophe_and_colon_are_untouched() -> None:
    assert process_punctuation("it's 3:00") == "it's 3:00"


# --------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------


def test_trailing_period_is_removed() -> None:
    assert process_punctuation("yes.") == "yes"
    assert vqa_accuracy("yes.", ["yes"] * 9 + ["no"]) == 1.0


def test_period_before_digit_is_kept() -> None:
    assert process_punctuation("3.5") == "3.5"
    assert process_punctuation("3.5.") == "3.5"
    assert process_punctuation(".5") == ".5"


def test_period_after_digit_is_removed_because_lookbehind_is_malformed() -> None:
    # The intended "not preceded by a digit" guard does not work.
    assert process_punctuation("3.") == "3"
    assert process_punctuation("st.louis") == "stlouis"


def test_at_most_32_periods_are_removed() -> None:
    # re.UNICODE (== 32) is passed as the count argument of re.sub.
    assert process_punctuation("." * 40) == "." * 8
    assert process_punctuation("." * 32) == ""
    assert process_punctuation("a." * 40) == "a" * 32 + "a." * 8
    # Periods kept because a digit follows do not use up the budget.
    assert process_punctuation("1.5" * 3 + "." * 33) == "1.5" * 3 + "."


# --------------------------------------------------------------------------
# Rounding and aggregation
# --------------------------------------------------------------------------


def test_official_round_exact_halves_go_away_from_zero() -> None:
    # 0.125 = 1/8 is exact in binary, a true half: Python 2 rounds it up
    # (Python 3's round would give 0.12).
    assert Decimal(0.125) == Decimal("0.125")
    assert official_round(0.125) == 0.13
    assert official_round(-0.125) == -0.13
    assert official_round(12.125) == 12.13
    assert official_round(0.5, 0) == 1.0
    assert official_round(2.5, 0) == 3.0


def test_official_round_uses_the_exact_binary_value() -> None:
    # The float nearest 0.135 is 0.13500000000000000888..., above the half.
    assert Decimal(0.135) > Decimal("0.135")
    assert official_round(0.135) == 0.14
    # The float nearest 2.675 is 2.67499999999999982236..., below the half.
    assert Decimal(2.675) < Decimal("2.675")
    assert official_round(2.675) == 2.67
    # The float nearest 12.345 is 12.34500000000000063948..., above the half.
    assert Decimal(12.345) > Decimal("12.345")
    assert official_round(12.345) == 12.35
    # The float nearest 1.005 is 1.00499999999999989341..., below the half.
    assert Decimal(1.005) < Decimal("1.005")
    assert official_round(1.005) == 1.0
    # The float nearest 0.145 is 0.14499999999999999000..., below the half.
    assert Decimal(0.145) < Decimal("0.145")
    assert official_round(0.145) == 0.14


def test_official_round_other_digits_and_non_finite() -> None:
    assert official_round(63.3333333) == 63.33
    assert official_round(15.0, -1) == 20.0
    assert official_round(1e300) == 1e300
    assert official_round(math.inf) == math.inf
    assert math.isnan(official_round(math.nan))


def test_aggregate() -> None:
    assert aggregate([1.0, 0.3, 0.6]) == 63.33  # 190/3 = 63.333...
    assert aggregate([1.0, 0.0]) == 50.0
    # 100 * 97 / 800 = 12.125 exactly: an exact half, rounded up.
    assert aggregate([1.0] * 97 + [0.0] * 703) == 12.13


def test_aggregate_follows_official_float_evaluation_order() -> None:
    # Official: round(100 * sum(acc) / len(acc), 2), with a plain
    # left-to-right float sum. Here that expression is exactly 51.875 and
    # rounds to 51.88, while 100 * (sum / n) gives 51.87499999999999.
    scores = [0.6, 5 / 6, 0.0, 7 / 24, 0.5, 0.75, 7 / 24, 5 / 6, 0.75, 0.875, 0.5, 0.0]
    naive = 0.0
    for s in scores:
        naive += s
    assert 100 * naive / len(scores) == 51.875
    assert 100 * (naive / len(scores)) < 51.875
    assert aggregate(scores) == 51.88
    # Here the plain sum gives exactly 48.125 (-> 48.13); a compensated
    # (math.fsum / Python 3.12+ sum) total gives 48.12499999999999 (-> 48.12).
    scores = [7 / 24, 4 / 9, 8 / 9, 0.3]
    assert 100 * math.fsum(scores) / len(scores) < 48.125
    assert aggregate(scores) == 48.13


def test_aggregate_empty_raises() -> None:
    with pytest.raises(ValueError):
        aggregate([])


def test_aggregate_by_type() -> None:
    scores = [1.0, 0.0, 0.3, 0.6, 1.0]
    types = ["yes/no", "yes/no", "number", "other", "number"]
    result = aggregate_by_type(scores, types)
    assert result == {"yes/no": 50.0, "number": 65.0, "other": 60.0}
    assert list(result) == ["yes/no", "number", "other"]
    assert aggregate_by_type([], []) == {}
    with pytest.raises(ValueError):
        aggregate_by_type([1.0], ["a", "b"])


# --------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------


@settings(max_examples=300)
@given(prediction=st.text(), answers=st.lists(st.text(), min_size=1, max_size=12))
def test_vqa_accuracy_never_raises_and_is_a_multiple_of_one_third_over_n(prediction: str, answers: list[str]) -> None:
    score = vqa_accuracy(prediction, answers)
    assert 0.0 <= score <= 1.0
    # Each per-answer credit is a multiple of 1/3, so score * 3n is integral.
    scaled = score * 3 * len(answers)
    assert scaled == pytest.approx(round(scaled), abs=1e-9)


@settings(max_examples=300)
@given(
    prediction=st.sampled_from(["yes", "no", "2", "two", "a dog", "Dog", "1,000"]),
    answers=st.lists(
        st.sampled_from(["yes", "Yes", "no", "2", "two", "dog", "the dog", "1000"]),
        min_size=10,
        max_size=10,
    ),
)
def test_vqa_accuracy_on_ten_answers_takes_official_values(prediction: str, answers: list[str]) -> None:
    score = vqa_accuracy(prediction, answers)
    assert any(score == pytest.approx(v) for v in (0.0, 0.3, 0.6, 0.9, 1.0))


@given(st.text())
def test_normalize_answer_never_raises(text: str) -> None:
    assert isinstance(normalize_answer(text), str)


_NORMALISABLE_CHARS = string.ascii_letters + string.digits + " " + "".join(PUNCTUATION) + "."


# Restricted to at most 32 periods: process_punctuation removes only 32
# periods per call (official count=32 quirk), so a text with more removable
# periods loses further ones on a second pass and is not idempotent.
@settings(max_examples=500)
@given(st.text(alphabet=_NORMALISABLE_CHARS, max_size=60).filter(lambda t: t.count(".") <= 32))
def test_normalize_answer_is_idempotent(text: str) -> None:
    once = normalize_answer(text)
    assert normalize_answer(once) == once


def test_normalize_answer_is_not_idempotent_beyond_32_periods() -> None:
    # Documents why the property above restricts periods.
    once = normalize_answer("." * 40)
    assert once == "." * 8
    assert normalize_answer(once) == ""


# --------------------------------------------------------------------------
# Python 2 string semantics (the reference script is Python 2)
# --------------------------------------------------------------------------


def test_digits_in_the_two_regexes_are_ascii_only() -> None:
    # Python 2 compiles "\\d" without re.UNICODE: only 0-9 are digits there.
    arabic_1, arabic_2, arabic_3, arabic_5 = "\u0661", "\u0662", "\u0663", "\u0665"
    assert process_punctuation(f"{arabic_1},{arabic_2}") == f"{arabic_1} {arabic_2}"  # not digit,digit
    assert process_punctuation(f"a-b {arabic_1},{arabic_2}") == f"a b {arabic_1} {arabic_2}"
    assert process_punctuation("a-b 1,2") == "ab 12"
    # A period before a non-ASCII digit is not "followed by a digit", so it goes.
    assert process_punctuation(f"{arabic_3}.{arabic_5}") == f"{arabic_3}{arabic_5}"
    assert process_punctuation(f"{arabic_3}.5") == f"{arabic_3}.5"
    answers = [f"{arabic_3}{arabic_5}"] * 2 + [f"{arabic_3}.{arabic_5}"] * 3 + ["no"] * 5
    assert vqa_accuracy(f"{arabic_3}.{arabic_5}", answers) == pytest.approx(1.0)


def test_lower_casing_is_python2s() -> None:
    # One character to one character: dotted capital I gives a plain "i".
    assert normalize_answer("\u0130stanbul") == "istanbul"
    # No final-sigma rule: a capital sigma always becomes the medial form.
    assert normalize_answer("\u039f\u0394\u039f\u03a3") == "\u03bf\u03b4\u03bf\u03c3"
    # Letters that gained a lowercase form after Unicode 5.2 stay as they are.
    assert normalize_answer("\u13a0") == "\u13a0"  # Cherokee A (lowercase added in Unicode 8.0)
    assert normalize_answer("\u1c90") == "\u1c90"  # Georgian Mtavruli AN (Unicode 11.0)
    assert normalize_answer("\U00010400") == "\U00010428"  # Deseret, in Unicode 5.2 already
    assert normalize_answer("Caf\u00c9") == "caf\u00e9"


def test_whitespace_is_python2s() -> None:
    # U+180E was whitespace in Unicode 5.2 (Python 2.7), not in Python 3.
    assert normalize_answer("red\u180ecar") == "red car"
    assert vqa._clean_whitespace("\u180eyes\u180e") == "yes"
    assert vqa_accuracy("yes\u180e", ["yes"] * 10) == 1.0  # stripped even when the answers agree
    # A zero-width space is not whitespace in either.
    assert normalize_answer("red\u200bcar") == "red\u200bcar"
    assert normalize_answer("red\u3000car\xa0") == "red car"


# --------------------------------------------------------------------------
# The reference script's own outputs (vqa_official_cases.json)
# --------------------------------------------------------------------------

GOLDEN = Path(__file__).with_name("vqa_official_cases.json")
REFERENCE_COMMIT = "a013f0043c1e2cdc995922dfe257f7149aa9af06"
REFERENCE_FILE = "PythonEvaluationTools/vqaEvaluation/vqaEval.py"


@functools.cache
def golden() -> dict:
    with GOLDEN.open(encoding="utf-8") as f:
        return json.load(f)


def test_golden_file_names_the_reference_and_so_does_the_module() -> None:
    reference = golden()["reference"]
    assert reference["repository"] == "GT-Vision-Lab/VQA"
    assert reference["commit"] == REFERENCE_COMMIT
    assert reference["commit_subject"] == "Fixed processing answers bug"
    assert reference["file"] == REFERENCE_FILE
    assert reference["interpreter"].startswith("Python 2.7")
    assert golden()["generated"].startswith("Outside this repository")
    assert REFERENCE_COMMIT in golden()["command"]
    assert vqa.__doc__ is not None
    assert REFERENCE_COMMIT in vqa.__doc__ and REFERENCE_FILE in vqa.__doc__


def test_golden_file_covers_every_kind_of_case() -> None:
    counts = Counter(case[0] for case in golden()["accuracy_cases"])
    assert counts["contraction"] == 10 * len(CONTRACTIONS)
    assert counts["random"] >= 3000
    for category in ("capitalised_key", "punctuation", "period", "apostrophe", "number", "article",
                     "whitespace", "unanimity", "empty", "unicode", "answer_count"):  # fmt: skip
        assert counts[category] >= 10, category
    assert sum(counts.values()) >= 10_000
    # Every official value a 10-answer question can take occurs, including the
    # ones whose last bit depends on the order of the answers.
    values = {case[3] for case in golden()["accuracy_cases"]}
    assert {0.0, 0.3, 0.6, 0.9, 1.0, 0.8999999999999998, 0.5999999999999999, 0.6000000000000001} <= values


def test_tables_are_the_reference_ones() -> None:
    tables = golden()["tables"]
    assert list(CONTRACTIONS.items()) == [tuple(pair) for pair in tables["contractions"]]  # same order too
    assert list(NUMBER_WORDS.items()) == [tuple(pair) for pair in tables["manualMap"]]
    assert ARTICLES == set(tables["articles"]) and len(tables["articles"]) == 3
    assert list(PUNCTUATION) == tables["punct"]
    assert vqa._PERIOD.pattern == tables["periodStrip"]
    assert vqa._DIGIT_COMMA.pattern == tables["commaStrip"]
    # No flags there (Python 2: ASCII digits); re.ASCII says the same here.
    assert tables["regex_flags"] == [0, 0]
    assert vqa._PERIOD.flags & re.ASCII and vqa._DIGIT_COMMA.flags & re.ASCII


@functools.cache
def our_scores() -> tuple[float, ...]:
    return tuple(vqa_accuracy(prediction, answers) for _, prediction, answers, _, _ in golden()["accuracy_cases"])


def test_vqa_accuracy_equals_the_reference_on_every_golden_case() -> None:
    # Exact float equality: the same operations on the same floats in the same
    # order (min(1, k/3) per answer, a left-to-right sum, one division).
    mismatches = [
        (category, prediction, answers, official, ours)
        for (category, prediction, answers, official, _), ours in zip(golden()["accuracy_cases"], our_scores())
        if ours != official
    ]
    assert not mismatches, f"{len(mismatches)} cases differ from the reference, e.g. {mismatches[:5]}"


def test_per_question_rounding_equals_the_reference() -> None:
    # The reference's evalQA: round(100 * acc, 2) with Python 2 round.
    mismatches = [
        (prediction, answers, rounded)
        for (_, prediction, answers, _, rounded), ours in zip(golden()["accuracy_cases"], our_scores())
        if official_round(100 * ours) != rounded
    ]
    assert not mismatches, mismatches[:5]


def test_normalisation_equals_the_reference_on_every_golden_text() -> None:
    mismatches = [
        (text, expected, ours)
        for _, text, *expected in golden()["normalisation_cases"]
        if (ours := [process_punctuation(text), process_digit_article(text), normalize_answer(text)]) != expected
    ]
    assert not mismatches, f"{len(mismatches)} texts differ from the reference, e.g. {mismatches[:5]}"


def test_aggregates_equal_the_reference() -> None:
    cases = golden()["accuracy_cases"]
    assert golden()["aggregates"][0][:3] == [0, len(cases), 1]  # the first one is every case
    for start, stop, step, overall, per_type in golden()["aggregates"]:
        scores = our_scores()[start:stop:step]
        categories = [case[0] for case in cases[start:stop:step]]
        assert aggregate(scores) == overall, (start, stop, step)
        assert aggregate_by_type(scores, categories) == per_type, (start, stop, step)


def test_official_round_equals_python2_round() -> None:
    mismatches = [(x, n, r) for x, n, r in golden()["round_cases"] if official_round(x, n) != r]
    assert not mismatches, mismatches[:5]
    assert len(golden()["round_cases"]) >= 2000


def test_lower_casing_equals_python2_on_every_code_point() -> None:
    expected = dict(golden()["python2_unicode"]["lower"])
    assert vqa._PY2_LOWER == expected
    codes = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    everything = "".join(map(chr, codes))
    assert vqa._py2_lower(everything) == "".join(chr(expected.get(c, c)) for c in codes)
    ascii_text = "".join(map(chr, range(128)))
    assert vqa._py2_lower(ascii_text) == "".join(chr(expected.get(c, c)) for c in range(128))


def test_whitespace_equals_python2() -> None:
    expected = golden()["python2_unicode"]["whitespace"]
    assert sorted(map(ord, vqa._PY2_WHITESPACE)) == expected
    for code in expected:
        separator = chr(code)
        assert vqa._py2_split(f"{separator}a{separator}{separator}b{separator}") == ["a", "b"]
        assert vqa._clean_whitespace(f"{separator}a b{separator}") == "a b"


# --------------------------------------------------------------------------
# Every contractions entry, one by one
# --------------------------------------------------------------------------

REFERENCE_CONTRACTIONS = [tuple(pair) for pair in golden()["tables"]["contractions"]]
OTHER_ANSWERS = ["no", "blue", "dog", "table", "left", "skiing", "white"]


@pytest.mark.parametrize(("key", "value"), REFERENCE_CONTRACTIONS, ids=[key for key, _ in REFERENCE_CONTRACTIONS])
def test_contraction_entry(key: str, value: str) -> None:
    assert CONTRACTIONS[key] == value
    assert CURLY not in key + value
    # The value itself is left as it is (lower-cased): no value is another key's key.
    assert normalize_answer(value) == value.lower()
    # 3 of 10 answers match: (3 * 2/3 + 7 * 1) / 10.
    three = (3 * (2 / 3) + 7) / 10
    if key == key.lower():
        assert normalize_answer(key) == value
        assert normalize_answer(key.upper()) == value
        assert vqa_accuracy(key, [value] * 3 + OTHER_ANSWERS) == pytest.approx(three)
        assert vqa_accuracy(value, [key] * 3 + OTHER_ANSWERS) == pytest.approx(three)
        assert vqa_accuracy(key.title(), [key, value, value] + OTHER_ANSWERS) == pytest.approx(three)
    else:
        # Words are lower-cased before the lookup: "Im" -> "im", never "I'm".
        assert normalize_answer(key) == key.lower() != value.lower()
        assert vqa_accuracy(key, [value] * 3 + OTHER_ANSWERS) == 0.0
        assert vqa_accuracy(value, [key] * 3 + OTHER_ANSWERS) == 0.0
        assert vqa_accuracy(key.lower(), [key] * 3 + OTHER_ANSWERS) == pytest.approx(three)
    # Unanimous answers are compared raw, so a key and a different value never agree there.
    assert vqa_accuracy(key, [key] * 10) == 1.0
    assert vqa_accuracy(key, [value] * 10) == (1.0 if key == value else 0.0)  # "let's" and "she's" map to themselves
    # And the reference's own cases for this entry are among the golden ones.
    assert sum(case[0] == "contraction" and case[1] == key for case in golden()["accuracy_cases"]) >= 4
