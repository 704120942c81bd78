"""VQA accuracy, reproducing the official VQA evaluation script exactly.

Reference: GT-Vision-Lab/VQA at commit a013f0043c1e2cdc995922dfe257f7149aa9af06
(a013f00, 2021-03-11, "Fixed processing answers bug"), file
``PythonEvaluationTools/vqaEvaluation/vqaEval.py``. Published VQA numbers are
produced by that script, so every quirk of it is kept on purpose, not fixed:

* Both sides are whitespace-cleaned (newline and tab -> space, then strip).
  Answers are only normalised when the cleaned human answers disagree; when
  all of them are identical the prediction is compared to them as a raw
  string, so ``"Yes"`` scores 0 against ten ``"yes"``. When they disagree,
  the prediction and every answer get the same two steps, punctuation first,
  then lower-casing, number words, articles and contractions.
* Whether a punctuation mark is deleted or turned into a space is decided by
  looking at the *original* text, not the partly processed one, and a single
  ``digit,digit`` anywhere makes every punctuation mark be deleted.
* The period regex is applied with ``re.UNICODE`` passed positionally, which
  Python reads as ``count=32``: at most 32 periods are removed.
* The contractions table is applied once, word by word, after lower-casing:
  its capitalised keys (``"Im"``, ``"Ive"``, ``"Id've"``, ``"I'dve"``) can never
  match, and ``"somebody'd"`` maps to ``"somebodyd"``. All its apostrophes are
  straight (U+0027), so ``"dont"`` and ``"don't"`` agree.
* Each human answer is a separate record (the official data gives each an
  ``answer_id``), so leaving one out removes exactly that one, duplicates kept.
* Overall figures use Python 2 ``round`` (half away from zero on the exact
  binary value), not Python 3's round-half-even.

The script is Python 2 and reads its JSON into ``unicode`` strings; its string
operations are reproduced as Python 2.7 performs them, not as Python 3 would:

* ``\\d`` in its two regexes matches ASCII digits only (Python 2 needs
  ``re.UNICODE`` for more), so ``"\u0661,\u0662"`` is not a digit-comma-digit.
* ``lower()`` is the per-character simple mapping of Unicode 5.2.0 (Python
  2.7's database): ``"\u0130"`` -> ``"i"``, a final capital sigma -> ``"\u03c3"``,
  and letters that gained a lowercase form later (Cherokee, Georgian
  Mtavruli, ...) stay as they are.
* ``split()`` and ``strip()`` use Python 2.7's whitespace, which includes
  U+180E MONGOLIAN VOWEL SEPARATOR.

``tests/unit/vqa_official_cases.json`` holds outputs of the reference script
itself, run under Python 2.7, and the tests compare this module to them.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Sequence

# The official punctuation list, in the official order (order matters: each
# mark is handled against the text left by the previous ones). Apostrophe,
# colon and period are not in it.
PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
    ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip

# The official ``manualMap``: whole words only, applied after lower-casing.
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

# The official contractions table, entry for entry, in its order. Every
# apostrophe is the straight one (U+0027). Keys with capitals ("Id've",
# "I'dve", "Im", "Ive") are unreachable because words are lower-cased first.
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're", "theres": "there's",
    "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll",
    "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've",
    "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll",
    "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip

# ``\d`` is ASCII-only in the official (Python 2, no re.UNICODE) patterns,
# hence re.ASCII; the pattern texts are the official ones.
_DIGIT_COMMA = re.compile(r"(\d)(\,)(\d)", re.ASCII)
# Its intended lookbehind "(?<!\d)" was mistyped as the lookahead "(?!<=\d)",
# which always succeeds in front of a '.', so the pattern removes every period
# that is not followed by an ASCII digit.
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)", re.ASCII)
# The official call is ``sub("", text, re.UNICODE)``: the flag lands in the
# positional ``count`` slot, and int(re.UNICODE) == 32.
_PERIOD_MAX_REMOVALS = int(re.UNICODE)

# Each human answer is credited min(1, matches among the others / 3).
_MATCHES_FOR_FULL_CREDIT = 3

# Python 2.7's unicode whitespace (Unicode 5.2.0), used by its split() and
# strip(). Python 3 no longer counts U+180E.
_PY2_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u180e"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_PY2_WHITESPACE_RUN = re.compile("[" + re.escape(_PY2_WHITESPACE) + "]+")

# Python 2.7's unicode.lower(): one character to one character, Unicode 5.2.0
# simple lowercase mappings. Stored as runs (first, last, step, offset): every
# step-th code point from first to last lower-cases to itself + offset.
_PY2_LOWER_RUNS: tuple[tuple[int, int, int, int], ...] = (
    (0x0041, 0x005A, 1, 32), (0x00C0, 0x00D6, 1, 32), (0x00D8, 0x00DE, 1, 32), (0x0100, 0x012E, 2, 1),
    (0x0130, 0x0130, 1, -199), (0x0132, 0x0136, 2, 1), (0x0139, 0x0147, 2, 1), (0x014A, 0x0176, 2, 1),
    (0x0178, 0x0178, 1, -121), (0x0179, 0x017D, 2, 1), (0x0181, 0x0181, 1, 210), (0x0182, 0x0184, 2, 1),
    (0x0186, 0x0186, 1, 206), (0x0187, 0x0187, 1, 1), (0x0189, 0x018A, 1, 205), (0x018B, 0x018B, 1, 1),
    (0x018E, 0x018E, 1, 79), (0x018F, 0x018F, 1, 202), (0x0190, 0x0190, 1, 203), (0x0191, 0x0191, 1, 1),
    (0x0193, 0x0193, 1, 205), (0x0194, 0x0194, 1, 207), (0x0196, 0x0196, 1, 211), (0x0197, 0x0197, 1, 209),
    (0x0198, 0x0198, 1, 1), (0x019C, 0x019C, 1, 211), (0x019D, 0x019D, 1, 213), (0x019F, 0x019F, 1, 214),
    (0x01A0, 0x01A4, 2, 1), (0x01A6, 0x01A6, 1, 218), (0x01A7, 0x01A7, 1, 1), (0x01A9, 0x01A9, 1, 218),
    (0x01AC, 0x01AC, 1, 1), (0x01AE, 0x01AE, 1, 218), (0x01AF, 0x01AF, 1, 1), (0x01B1, 0x01B2, 1, 217),
    (0x01B3, 0x01B5, 2, 1), (0x01B7, 0x01B7, 1, 219), (0x01B8, 0x01B8, 1, 1), (0x01BC, 0x01BC, 1, 1),
    (0x01C4, 0x01C4, 1, 2), (0x01C5, 0x01C5, 1, 1), (0x01C7, 0x01C7, 1, 2), (0x01C8, 0x01C8, 1, 1),
    (0x01CA, 0x01CA, 1, 2), (0x01CB, 0x01DB, 2, 1), (0x01DE, 0x01EE, 2, 1), (0x01F1, 0x01F1, 1, 2),
    (0x01F2, 0x01F4, 2, 1), (0x01F6, 0x01F6, 1, -97), (0x01F7, 0x01F7, 1, -56), (0x01F8, 0x021E, 2, 1),
    (0x0220, 0x0220, 1, -130), (0x0222, 0x0232, 2, 1), (0x023A, 0x023A, 1, 10795), (0x023B, 0x023B, 1, 1),
    (0x023D, 0x023D, 1, -163), (0x023E, 0x023E, 1, 10792), (0x0241, 0x0241, 1, 1), (0x0243, 0x0243, 1, -195),
    (0x0244, 0x0244, 1, 69), (0x0245, 0x0245, 1, 71), (0x0246, 0x024E, 2, 1), (0x0370, 0x0372, 2, 1),
    (0x0376, 0x0376, 1, 1), (0x0386, 0x0386, 1, 38), (0x0388, 0x038A, 1, 37), (0x038C, 0x038C, 1, 64),
    (0x038E, 0x038F, 1, 63), (0x0391, 0x03A1, 1, 32), (0x03A3, 0x03AB, 1, 32), (0x03CF, 0x03CF, 1, 8),
    (0x03D8, 0x03EE, 2, 1), (0x03F4, 0x03F4, 1, -60), (0x03F7, 0x03F7, 1, 1), (0x03F9, 0x03F9, 1, -7),
    (0x03FA, 0x03FA, 1, 1), (0x03FD, 0x03FF, 1, -130), (0x0400, 0x040F, 1, 80), (0x0410, 0x042F, 1, 32),
    (0x0460, 0x0480, 2, 1), (0x048A, 0x04BE, 2, 1), (0x04C0, 0x04C0, 1, 15), (0x04C1, 0x04CD, 2, 1),
    (0x04D0, 0x0524, 2, 1), (0x0531, 0x0556, 1, 48), (0x10A0, 0x10C5, 1, 7264), (0x1E00, 0x1E94, 2, 1),
    (0x1E9E, 0x1E9E, 1, -7615), (0x1EA0, 0x1EFE, 2, 1), (0x1F08, 0x1F0F, 1, -8), (0x1F18, 0x1F1D, 1, -8),
    (0x1F28, 0x1F2F, 1, -8), (0x1F38, 0x1F3F, 1, -8), (0x1F48, 0x1F4D, 1, -8), (0x1F59, 0x1F5F, 2, -8),
    (0x1F68, 0x1F6F, 1, -8), (0x1F88, 0x1F8F, 1, -8), (0x1F98, 0x1F9F, 1, -8), (0x1FA8, 0x1FAF, 1, -8),
    (0x1FB8, 0x1FB9, 1, -8), (0x1FBA, 0x1FBB, 1, -74), (0x1FBC, 0x1FBC, 1, -9), (0x1FC8, 0x1FCB, 1, -86),
    (0x1FCC, 0x1FCC, 1, -9), (0x1FD8, 0x1FD9, 1, -8), (0x1FDA, 0x1FDB, 1, -100), (0x1FE8, 0x1FE9, 1, -8),
    (0x1FEA, 0x1FEB, 1, -112), (0x1FEC, 0x1FEC, 1, -7), (0x1FF8, 0x1FF9, 1, -128), (0x1FFA, 0x1FFB, 1, -126),
    (0x1FFC, 0x1FFC, 1, -9), (0x2126, 0x2126, 1, -7517), (0x212A, 0x212A, 1, -8383),
    (0x212B, 0x212B, 1, -8262), (0x2132, 0x2132, 1, 28), (0x2160, 0x216F, 1, 16), (0x2183, 0x2183, 1, 1),
    (0x24B6, 0x24CF, 1, 26), (0x2C00, 0x2C2E, 1, 48), (0x2C60, 0x2C60, 1, 1), (0x2C62, 0x2C62, 1, -10743),
    (0x2C63, 0x2C63, 1, -3814), (0x2C64, 0x2C64, 1, -10727), (0x2C67, 0x2C6B, 2, 1),
    (0x2C6D, 0x2C6D, 1, -10780), (0x2C6E, 0x2C6E, 1, -10749), (0x2C6F, 0x2C6F, 1, -10783),
    (0x2C70, 0x2C70, 1, -10782), (0x2C72, 0x2C72, 1, 1), (0x2C75, 0x2C75, 1, 1), (0x2C7E, 0x2C7F, 1, -10815),
    (0x2C80, 0x2CE2, 2, 1), (0x2CEB, 0x2CED, 2, 1), (0xA640, 0xA65E, 2, 1), (0xA662, 0xA66C, 2, 1),
    (0xA680, 0xA696, 2, 1), (0xA722, 0xA72E, 2, 1), (0xA732, 0xA76E, 2, 1), (0xA779, 0xA77B, 2, 1),
    (0xA77D, 0xA77D, 1, -35332), (0xA77E, 0xA786, 2, 1), (0xA78B, 0xA78B, 1, 1), (0xFF21, 0xFF3A, 1, 32),
    (0x10400, 0x10427, 1, 40),
)  # fmt: skip
_PY2_LOWER: dict[int, int] = {
    code: code + offset for first, last, step, offset in _PY2_LOWER_RUNS for code in range(first, last + 1, step)
}


def _py2_lower(text: str) -> str:
    """``unicode.lower()`` as Python 2.7 does it (no final sigma, no multi-character results)."""
    if text.isascii():
        return text.lower()  # identical on ASCII, and fast
    return text.translate(_PY2_LOWER)


def _py2_split(text: str) -> list[str]:
    """``unicode.split()`` with Python 2.7's whitespace."""
    return [word for word in _PY2_WHITESPACE_RUN.split(text) if word]


def _clean_whitespace(text: str) -> str:
    """The official first step, on the prediction and every answer: newline/tab -> space, then strip."""
    return text.replace("\n", " ").replace("\t", " ").strip(_PY2_WHITESPACE)


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
    """Lower-case, map number words to digits, drop articles, expand contractions (in that order)."""
    words = [NUMBER_WORDS.get(word, word) for word in _py2_split(_py2_lower(text))]
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
