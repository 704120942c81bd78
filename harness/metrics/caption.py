"""Caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr and, where it can run, SPICE), by pycocoevalcap.

Published captioning numbers come from ``pycocoevalcap.eval.COCOEvalCap.evaluate``, so this module
runs exactly its pipeline rather than a re-implementation: Stanford PTBTokenizer (Java) on the
references and, separately, the candidates, then the same scorers in the same order and the same
image order (the order of the references, as ``coco.getImgIds()`` gives it), with the same keys.
Scores are pycocoevalcap's own 0..1 values, not percentages.

One deliberate difference: pycocoevalcap turns ``\\n`` into a space before tokenizing but not the
other characters the tokenizer treats as line ends (``\\r``, ``\\v``, ``\\f``, U+2028, U+2029). Such a
character splits a caption into two lines, and because the tokenizer's output is matched back to
images line by line, every later caption silently lands on the wrong image. We turn those
characters into spaces too; for any caption without them the result is bit-for-bit COCOEvalCap's.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import HarnessError

# Characters Stanford PTBTokenizer (with -preserveLines) ends a line at; see the module docstring.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\u2028\u2029"})

METRICS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")


def java_missing() -> list[str]:
    """One line when Java is not on PATH (checked before a captioning run starts)."""
    if shutil.which("java") is not None:
        return []
    return [
        "caption metrics need Java (pycocoevalcap's PTB tokenizer and METEOR are Java programs) "
        "but 'java' is not on PATH; install a JRE, e.g. 'apt-get install default-jre-headless'"
    ]


def _require_java() -> None:
    # The tokenizer and METEOR are Java programs; without Java pycocoevalcap fails deep inside
    # subprocess with a bare FileNotFoundError. Any other tokenizer would change every score, so
    # there is no fallback: say what to install.
    for problem in java_missing():
        raise HarnessError(problem)


def spice_available() -> bool:
    """Whether SPICE can run offline: its jar and the Stanford CoreNLP 3.6.0 jars it needs are present.

    ``Spice()`` would otherwise download CoreNLP (hundreds of MB) from nlp.stanford.edu on first
    use, so we look for the files ``get_stanford_models`` checks, plus the models jar it extracts
    alongside (it only checks the first) and the SPICE jar itself.
    """
    from pycocoevalcap.spice import get_stanford_models as gsm
    from pycocoevalcap.spice import spice

    lib = os.path.join(gsm.SPICEDIR, gsm.SPICELIB)
    needed = [
        os.path.join(gsm.SPICEDIR, spice.SPICE_JAR),
        os.path.join(lib, f"{gsm.JAR}.jar"),
        os.path.join(lib, f"{gsm.JAR}-models.jar"),
    ]
    return all(os.path.isfile(p) for p in needed)


def _check(references: Mapping[str, list[str]], candidates: Mapping[str, str]) -> list[str]:
    """The image ids in reference order, after checking both sides describe the same images."""
    if not references:
        raise HarnessError("caption metrics need at least one image id; got no references")
    for image_id in references:
        if image_id not in candidates:
            raise HarnessError(f"caption image id '{image_id}' has references but no candidate")
    for image_id in candidates:
        if image_id not in references:
            raise HarnessError(f"caption image id '{image_id}' has a candidate but no references")
    for image_id, refs in references.items():
        # A bare string would be iterated as one reference per character.
        if isinstance(refs, str) or len(refs) == 0:
            raise HarnessError(f"caption image id '{image_id}' needs a non-empty list of references")
        if not isinstance(candidates[image_id], str):
            raise HarnessError(f"caption image id '{image_id}': candidate must be a string")
    return list(references)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (child processes included) for the duration."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _tokenize(captions: Mapping[str, list[str]], ids: list[str]) -> dict[str, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # PTBTokenizer only reads the 'caption' field of COCO annotation dicts. Its Java process prints a
    # "PTBTokenizer tokenized N tokens" line on the inherited stderr each call: send that to /dev/null.
    with _quiet_stderr():
        tokenized = PTBTokenizer().tokenize(
            {i: [{"caption": c.translate(_LINE_BREAKS)} for c in captions[i]] for i in ids}
        )
    # A broken JVM yields no output lines; fail here instead of with a KeyError in a scorer.
    for i in ids:
        if len(tokenized.get(i, [])) != len(captions[i]):
            raise HarnessError(f"PTB tokenizer returned no output for caption image id '{i}' (is Java working?)")
    return tokenized


def _run(
    references: Mapping[str, list[str]], candidates: Mapping[str, str], *, full: bool
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """COCOEvalCap.evaluate without pycocotools: corpus scores and per-image scores by id.

    ``full=False`` runs only BLEU and CIDEr (pure Python, no METEOR JVM) for per-image reports.
    """
    ids = _check(references, candidates)
    _require_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    corpus: dict[str, float] = {}
    per_image: dict[str, dict[str, float]] = {i: {} for i in ids}
    # pycocoevalcap prints progress (and Bleu its ratios) to stdout; the JVMs' own stderr lines stay.
    with contextlib.redirect_stdout(io.StringIO()):
        gts = _tokenize(references, ids)
        res = _tokenize({i: [candidates[i]] for i in ids}, ids)
        # COCOEvalCap's scorers, in its order.
        scorers: list[tuple[Callable[..., Any], str | list[str]]] = [(Bleu(4).compute_score, list(METRICS[:4]))]
        if full:
            scorers += [(_meteor, "METEOR"), (Rouge().compute_score, "ROUGE_L")]
        scorers.append((Cider().compute_score, "CIDEr"))
        if full and spice_available():
            from pycocoevalcap.spice.spice import Spice

            scorers.append((Spice().compute_score, "SPICE"))
        for compute, method in scorers:
            score, scores = compute(gts, res)
            # Bleu returns four corpus scores and four per-image lists, one per n-gram order.
            pairs = zip(score, scores, method) if isinstance(method, list) else [(score, scores, method)]
            for sc, scs, name in pairs:
                corpus[name] = float(sc)
                if name != "SPICE":  # SPICE's per-image scores are dicts of sub-scores, in sorted id order
                    for i, s in zip(gts.keys(), scs):
                        per_image[i][name] = float(s)
    return corpus, per_image


def _meteor(gts: dict[str, list[str]], res: dict[str, list[str]]) -> tuple[float, list[float]]:
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    try:
        return meteor.compute_score(gts, res)
    finally:
        # Meteor.__del__ takes a non-reentrant lock that compute_score leaves held when the JVM
        # dies mid-way, which would hang the interpreter at garbage collection; stop it ourselves.
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
        if meteor.lock.locked():
            meteor.lock.release()


def score_captions(references: Mapping[str, list[str]], candidates: Mapping[str, str]) -> dict[str, float]:
    """Corpus scores keyed as COCOEvalCap's ``eval``: Bleu_1..4, METEOR, ROUGE_L, CIDEr (+ SPICE if it can run).

    ``references`` maps image id to its reference captions, ``candidates`` image id to one caption.
    """
    return _run(references, candidates, full=True)[0]


def score_per_image(references: Mapping[str, list[str]], candidates: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Per-image ``{"Bleu_4": ..., "CIDEr": ...}`` by id, as COCOEvalCap's ``imgToEval`` has them.

    These depend on the whole set, not just the image: CIDEr's IDF weights come from all the
    references passed in. Per-image BLEU is pycocoevalcap's sentence BLEU (often ~0 for short captions).
    """
    per_image = _run(references, candidates, full=False)[1]
    return {i: {"Bleu_4": s["Bleu_4"], "CIDEr": s["CIDEr"]} for i, s in per_image.items()}
