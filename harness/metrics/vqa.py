"""VQA accuracy, reproducing the official VQA evaluation script bit for bit.

Reference: GT-Vision-Lab/VQA, ``PythonEvaluationTools/vqaEvaluation/vqaEval.py``
(the later "master" version). Published VQA numbers are produced by that
script, so every quirk of it is kept on purpose, not fixed:

* Answers are only normalised when the human answers disagree; when all of
  them are identical (after whitespace cleaning) the prediction is compared
  to them as a raw string, so ``"Yes"`` scores 0 against ten ``"yes"``.
* Whether a punctuation mark is deleted or turned into a space is decided by
  looking at the *original* text, not the partly processed one, and a single
  ``digit,digit`` anywhere makes every punctuation mark be deleted.
* The period regex is applied with ``re.UNICODE`` passed positionally, which
  Python reads as ``count=32``: at most 32 periods are removed.
* Some contraction table entries use a curly apostrophe (U+2019) and some
  keys start with a capital letter (unreachable after lower-casing).
* Overall figures use Python 2 ``round`` (half away from zero on the exact
  binary value), not Python 3's round-half-even.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Sequence

# The official punctuation list, in the official order (order matters: each
# mark is handled against the text left by the previous ones).
PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
    ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip

NUMBER_WORDS: dict[str, str] = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}

ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# The official contractions table, verbatim. It mixes the straight apostrophe
# ' (U+0027) and the curly one ’ (U+2019); keys such as "Im" contain capitals
# and can never match lower-cased words. Both are official behaviour.
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't",
    "arent": "aren't",
    "cant": "can't",
    "couldve": "could've",
    "couldnt": "couldn't",
    "couldn'tve": "couldn’t’ve",
    "couldnt’ve": "couldn’t’ve",
    "didnt": "didn’t",
    "doesnt": "doesn’t",
    "dont": "don’t",
    "hadnt": "hadn’t",
    "hadnt’ve": "hadn’t’ve",
    "hadn'tve": "hadn’t’ve",
    "hasnt": "hasn’t",
    "havent": "haven’t",
    "hed": "he’d",
    "hed’ve": "he’d’ve",
    "he’dve": "he’d’ve",
    "hes": "he’s",
    "howd": "how’d",
    "howll": "how’ll",
    "hows": "how’s",
    "Id’ve": "I’d’ve",
    "I’dve": "I’d’ve",
    "Im": "I’m",
    "Ive": "I’ve",
    "isnt": "isn’t",
    "itd": "it’d",
    "itd’ve": "it’d’ve",
    "it’dve": "it’d’ve",
    "itll": "it’ll",
    "let’s": "let’s",
    "maam": "ma’am",
    "mightnt": "mightn’t",
    "mightnt’ve": "mightn’t’ve",
    "mightn’tve": "mightn’t’ve",
    "mightve": "might’ve",
    "mustnt": "mustn’t",
    "mustve": "must’ve",
    "neednt": "needn’t",
    "notve": "not’ve",
    "oclock": "o’clock",
    "oughtnt": "oughtn’t",
    "ow’s’at": "’ow’s’at",
    "’ows’at": "’ow’s’at",
    "’ow’sat": "’ow’s’at",
    "shant": "shan’t",
    "shed’ve": "she’d’ve",
    "she’dve": "she’d’ve",
    "she’s": "she’s",
    "shouldve": "should’ve",
    "shouldnt": "shouldn’t",
    "shouldnt’ve": "shouldn’t’ve",
    "shouldn’tve": "shouldn’t’ve",
    "somebody’d": "somebodyd",
    "somebodyd’ve": "somebody’d’ve",
    "somebody’dve": "somebody’d’ve",
    "somebodyll": "somebody’ll",
    "somebodys": "somebody’s",
    "someoned": "someone’d",
    "someoned’ve": "someone’d’ve",
    "someone’dve": "someone’d’ve",
    "someonell": "someone’ll",
    "someones": "someone’s",
    "somethingd": "something’d",
    "somethingd’ve": "something’d’ve",
    "something’dve": "something’d’ve",
    "somethingll": "something’ll",
    "thats": "that’s",
    "thered": "there’d",
    "thered’ve": "there’d’ve",
    "there’dve": "there’d’ve",
    "therere": "there’re",
    "theres": "there’s",
    "theyd": "they’d",
    "theyd’ve": "they’d’ve",
    "they’dve": "they’d’ve",
    "theyll": "they’ll",
    "theyre": "they’re",
    "theyve": "they’ve",
    "twas": "’twas",
    "wasnt": "wasn’t",
    "wed’ve": "we’d’ve",
    "we’dve": "we’d’ve",
    "weve": "we've",
    "werent": "weren’t",
    "whatll": "what’ll",
    "whatre": "what’re",
    "whats": "what’s",
    "whatve": "what’ve",
    "whens": "when’s",
    "whered": "where’d",
    "wheres": "where's",
    "whereve": "where’ve",
    "whod": "who’d",
    "whod’ve": "who’d’ve",
    "who’dve": "who’d’ve",
    "wholl": "who’ll",
    "whos": "who’s",
    "whove": "who've",
    "whyll": "why’ll",
    "whyre": "why’re",
    "whys": "why’s",
    "wont": "won’t",
    "wouldve": "would’ve",
    "wouldnt": "wouldn’t",
    "wouldnt’ve": "wouldn’t’ve",
    "wouldn’tve": "wouldn’t’ve",
    "yall": "y’all",
    "yall’ll": "y’all’ll",
    "y’allll": "y’all’ll",
    "yall’d’ve": "y’all’d’ve",
    "y’alld’ve": "y’all’d’ve",
    "y’all’dve": "y’all’d’ve",
    "youd": "you’d",
    "youd’ve": "you’d’ve",
    "you’dve": "you’d’ve",
    "youll": "you’ll",
    "youre": "you’re",
    "youve": "you’ve",
}

_DIGIT_COMMA = re.compile(r"(\d)(\,)(\d)")
# The official pattern. Its intended lookbehind "(?<!\d)" was mistyped as the
# lookahead "(?!<=\d)", which always succeeds in front of a '.', so the
# pattern removes every period that is not followed by a digit.
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
# The official call is ``sub("", text, re.UNICODE)``: the flag lands in the
# positional ``count`` slot, and int(re.UNICODE) == 32.
_PERIOD_MAX_REMOVALS = int(re.UNICODE)

# Each human answer is credited min(1, matches among the others / 3).
_MATCHES_FOR_FULL_CREDIT = 3


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _sum_left_to_right(values: Sequence[float]) -> float:
    """Plain float accumulation, as Python 2 ``sum`` did.

    Python 3.12+ ``sum`` compensates rounding errors for floats, which can
    change the last bit of a mean and hence a rounded figure.
    """
    total = 0.0
    for value in values:
        total += value
    return total


def process_punctuation(text: str) -> str:
    """Delete or blank out punctuation, then strip periods, as the official script does."""
    has_digit_comma = _DIGIT_COMMA.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        # The test deliberately inspects the original ``text``, not ``out``.
        if mark + " " in text or " " + mark in text or has_digit_comma:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_PERIOD_MAX_REMOVALS)


def process_digit_article(text: str) -> str:
    """Lower-case, map number words to digits, drop articles, expand contractions."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES)


def normalize_answer(text: str) -> str:
    """The full normalisation the official script applies when the human answers disagree."""
    return process_digit_article(process_punctuation(_clean_whitespace(text)))


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Official VQA accuracy of one prediction against the human answers of one question.

    For each human answer, the prediction earns min(1, k/3) where k counts the
    *other* human answers equal to it; the score is the mean over all answers
    (so with 10 answers: 1 match -> 0.3, 2 -> 0.6, 3 -> 0.9, 4+ -> 1.0).
    """
    if not answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    predicted = _clean_whitespace(prediction)
    references = [_clean_whitespace(answer) for answer in answers]
    if len(set(references)) > 1:
        predicted = process_digit_article(process_punctuation(predicted))
        references = [process_digit_article(process_punctuation(ref)) for ref in references]
    is_match = [ref == predicted for ref in references]
    total_matches = sum(is_match)
    per_answer = [min(1.0, (total_matches - own_match) / _MATCHES_FOR_FULL_CREDIT) for own_match in is_match]
    return _sum_left_to_right(per_answer) / len(per_answer)


def official_round(x: float, ndigits: int = 2) -> float:
    """Python 2 ``round``: halves go away from zero, judged on the float's exact binary value.

    So 0.125 (exact in binary) -> 0.13, while 2.675 (stored as 2.67499...) -> 2.67.
    """
    if not math.isfinite(x):
        return x
    # Enough precision for every digit of the largest finite float plus ndigits.
    context = decimal.Context(prec=400 + max(ndigits, 0), rounding=decimal.ROUND_HALF_UP)
    quantum = decimal.Decimal(1).scaleb(-ndigits)
    return float(decimal.Decimal(x).quantize(quantum, context=context))


def aggregate(scores: Sequence[float]) -> float:
    """Overall accuracy in percent, as reported by the official script."""
    if not scores:
        raise ValueError("aggregate needs at least one score")
    # Official evaluation order: (100 * sum) / n, not 100 * (sum / n).
    return official_round(100 * _sum_left_to_right(scores) / len(scores))


def aggregate_by_type(scores: Sequence[float], types: Sequence[str]) -> dict[str, float]:
    """Accuracy in percent per answer type, keyed in order of first appearance."""
    if len(scores) != len(types):
        raise ValueError(f"got {len(scores)} scores but {len(types)} types")
    grouped: dict[str, list[float]] = {}
    for score, answer_type in zip(scores, types):
        grouped.setdefault(answer_type, []).append(score)
    return {answer_type: aggregate(group) for answer_type, group in grouped.items()}
