"""Findings: claims of a paper (Frozen's, by default) declared in a YAML file and checked against the runs in the
results database (``harness findings``; the measuring is in ``harness.results.findings_table``).

A findings file (``harness/catalog/findings/frozen.yaml``, or one of the user's in ``$HARNESS_HOME/findings`` or
``HARNESS_FINDINGS_PATH``, or any file by path) holds ``findings:``, a list of::

    - name: images beat blacked-out images
      claim: b > a              # "b > a", "a > b" (paired, B minus A), or "a near zero" (A's own score)
      where: {recipe: frozen, kind: [vqa, naming], min_shots: 1}   # both sides
      a: {images: black}        # what only side A is
      b: {images: real}         # what only side B is
      threshold: 5              # "near zero": the points the CI's upper end must stay below
      margin: 0                 # "better than": the points B must beat A by (default 0)
      note: ...                 # printed under the table when the finding has rows

A selector (``where``, ``a``, ``b``) has any of: ``model``, ``lm``, ``recipe``, ``task`` (shell-style patterns;
``task`` matches the task's name or its label, ``emoji-open 2-way``), ``kind`` (vqa, naming, caption), ``shots``
(a naming task's inner shots), ``min_shots``, ``images`` (real, black, shuffled, caption), and the cell settings of
any task kind by name (naming's ``ways``, ``repeats``, ``induction``, ``answer``). A value may be one item or a list.
``a`` and ``b`` name what the two sides differ in; everything else must be equal for two cells to be compared
(``task`` and ``kind`` belong under ``where``: items pair within one task).

A finding may also say ``control: true`` (a check that the setup works, not a claim of the paper: its rows print
**control failed** where it does not hold) and ``guards: [names]`` (the findings a failed control makes suspect).

Verdicts, with the effect oriented so that positive is the claimed direction (B - A for "b > a", A - B for
"a > b"), [low, high] its paired 95% CI in points and p the Holm-adjusted p-value of the row, at level alpha
(``--alpha``, 0.05 by default):

- "holds": low > margin (the whole CI on the claimed side) and p < alpha;
- "does not hold": high <= margin (the CI holds no effect the claim makes: all of it on the other side, or at 0)
  and p < alpha;
- "not shown": anything else: the CI spans the margin, or the correction for the table's other comparisons leaves
  p at alpha or above;
- "not measured": no runs of one side or no items the two sides share.

For "a near zero" (absolute score s of A, CI [low, high], threshold t; no p-value): "holds" when high < t, "does
not hold" when low >= t, "not shown" when low < t <= high, "not measured" when A has no runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import from_mapping, read_yaml
from harness.errors import HarnessError

CLAIMS = ("b > a", "a > b", "a near zero")
VERDICTS = ("holds", "does not hold", "not shown", "not measured")
# The identity of a cell (every field of a run but its seeds; ``settings``: its kind's cell settings as (name, value)
# pairs), and what a side's selector field frees from it: cells of A and B are compared where every field not freed by
# the fields that A or B set is equal. A cell setting (naming's ways, induction) frees itself, within ``settings``.
IDENTITY = ("version", "lm", "recipe", "task_name", "kind", "variant", "settings", "shots", "images", "limit", "split")
FREES = {"model": ("version", "lm", "recipe"), "lm": ("version", "lm"), "recipe": ("version", "recipe"),
         "shots": ("shots",), "min_shots": ("shots",), "images": ("images",)}  # fmt: skip
_LISTS = ("model", "lm", "recipe", "task", "kind", "shots", "images")


@dataclass(frozen=True)
class Selector:
    """Which runs a side (or both, ``where``) takes. An empty field takes every run."""

    model: tuple[str, ...] = ()  # patterns on the model's name (or its version label)
    lm: tuple[str, ...] = ()
    recipe: tuple[str, ...] = ()
    task: tuple[str, ...] = ()  # patterns on the task's name or label
    kind: tuple[str, ...] = ()
    shots: tuple[int, ...] = ()
    min_shots: int | None = None
    images: tuple[str, ...] = ()
    # Cell settings of a task kind (``ways: [2, 5]``, ``induction: true``), each with the values it takes.
    settings: tuple[tuple[str, tuple], ...] = ()

    def set_fields(self) -> list[str]:
        return [k for k in FREES if getattr(self, k) not in ((), None)] + [name for name, _ in self.settings]

    def merged(self, other: Selector) -> Selector:
        """This selector with every field that ``other`` sets taken from ``other`` (a cell setting by name)."""
        fields = {k: getattr(other, k) for k in other.__dict__ if getattr(other, k) not in ((), None)}
        fields["settings"] = tuple({**dict(self.settings), **dict(other.settings)}.items())
        return Selector(**{**self.__dict__, **fields})

    def describe(self) -> str:
        parts = [f"{k}={'|'.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in self.__dict__.items()
                 if v not in ((), None) and k != "settings"]  # fmt: skip
        parts += [f"{name}={'|'.join(map(str, values))}" for name, values in self.settings]
        return ", ".join(parts) or "any run"


@dataclass(frozen=True)
class Finding:
    name: str
    claim: str
    a: dict
    b: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)
    threshold: float = 5.0
    margin: float = 0.0
    note: str = ""
    control: bool = False  # a check that the setup works: "control failed" where it does not hold
    guards: tuple[str, ...] = ()  # the findings a failed control makes suspect, by name


@dataclass(frozen=True)
class FindingSpec:
    """A finding read and checked: its selectors built."""

    name: str
    claim: str
    a: Selector
    b: Selector | None
    threshold: float
    margin: float
    note: str
    contrast: tuple[str, ...] = ()  # the selector fields that a or b set: what the two sides differ in
    control: bool = False
    guards: tuple[str, ...] = ()

    @property
    def absolute(self) -> bool:
        return self.b is None

    def freed(self) -> set[str]:
        """The cell fields A and B may differ in (a cell setting by its name)."""
        return {f for key in self.contrast for f in FREES.get(key, (key,))}


@dataclass(frozen=True)
class FindingsFile:
    findings: tuple[dict, ...]
    description: str = ""
    note: str = ""


@dataclass(frozen=True)
class Findings:
    path: Path
    findings: tuple[FindingSpec, ...]
    description: str
    note: str


def _selector(data: Any, where: str, side: bool) -> Selector:
    from harness import conditions
    from harness.kinds.base import KINDS, cell_settings

    settings = []
    if isinstance(data, dict):
        declared = cell_settings()
        named = [k for k in data if k in declared and k not in Selector.__dataclass_fields__]
        for name in named:
            values = data[name] if isinstance(data[name], list) else [data[name]]
            if not values or any(type(v) is not declared[name].type for v in values):
                raise HarnessError(f"{where}: field '{name}' must be one {declared[name].type.__name__} or a list of "
                                   f"them, got {data[name]!r}")  # fmt: skip
            settings.append((name, tuple(values)))
        data = {k: [v] if k in _LISTS and not isinstance(v, list) else v for k, v in data.items() if k not in named}
        if side:
            for key in ("task", "kind"):
                if key in data:
                    raise HarnessError(f"{where}: field '{key}' belongs under where: the two sides pair items "
                                       "of one task")  # fmt: skip
        if "settings" in data:
            raise HarnessError(f"{where}: unknown field 'settings' (a task kind's cell setting goes by its own name)")
        order = list(declared)
        settings.sort(key=lambda pair: order.index(pair[0]))
    selector = from_mapping(Selector, data, where)
    selector = Selector(**{**selector.__dict__, "settings": tuple(settings)})

    for image in selector.images:
        if image not in conditions.LABELS and not (image.startswith("baseline:") and len(image) > len("baseline:")):
            raise HarnessError(f"{where}: field 'images': unknown image condition '{image}' "
                               f"(known: {', '.join(conditions.LABELS)}, or "
                               "baseline:NAME, a no-model baseline such as baseline:copy_last)")  # fmt: skip
    for kind in selector.kind:
        if kind not in KINDS:
            raise HarnessError(f"{where}: field 'kind': unknown task kind '{kind}' (known: {', '.join(KINDS.names())})")
    return selector


def _finding(raw: Any, where: str) -> FindingSpec:
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        where = f"{where} ({raw['name']})"
    finding = from_mapping(Finding, raw, where)
    claim = " ".join(finding.claim.split())
    if claim not in CLAIMS:
        raise HarnessError(f"{where}: field 'claim' must be one of {', '.join(repr(c) for c in CLAIMS)}, got "
                           f"{finding.claim!r}")  # fmt: skip
    if not (math.isfinite(finding.threshold) and finding.threshold > 0):
        raise HarnessError(f"{where}: field 'threshold' must be a positive number of points, got {finding.threshold}")
    if not (math.isfinite(finding.margin) and finding.margin >= 0):
        raise HarnessError(f"{where}: field 'margin' must be 0 or more points, got {finding.margin}")
    if finding.guards and not finding.control:
        raise HarnessError(f"{where}: field 'guards': only a control (control: true) guards other findings")
    extra = {"control": finding.control, "guards": tuple(finding.guards)}
    common = _selector(finding.where, f"{where}: where", side=False)
    a = _selector(finding.a, f"{where}: a", side=True)
    b = _selector(finding.b, f"{where}: b", side=True) if finding.b else None
    if claim == "a near zero":
        if b is not None:
            raise HarnessError(f"{where}: field 'b': a 'near zero' claim is about side a alone")
        return FindingSpec(finding.name, claim, common.merged(a), None, finding.threshold, 0.0, finding.note, **extra)
    if b is None or not (a.set_fields() or b.set_fields()):
        raise HarnessError(f"{where}: field 'b': a paired claim needs sides a and b that differ (in model, lm, "
                           "recipe, shots, min_shots, images or a task kind's cell setting, such as ways)")  # fmt: skip
    sides = [*a.set_fields(), *b.set_fields()]
    contrast = tuple(k for k in FREES if k in sides) + tuple(dict.fromkeys(k for k in sides if k not in FREES))
    return FindingSpec(finding.name, claim, common.merged(a), common.merged(b), finding.threshold, finding.margin,
                       finding.note, contrast, **extra)  # fmt: skip


def findings_path(name: str) -> Path:
    """A findings file by path, or a built-in (or the user's) findings file by name: ``frozen``."""
    from harness import registry

    found = registry.named_file("findings", name)
    if found is None:
        known = registry.file_names("findings")
        raise HarnessError(f"--findings {name}: no such file, and no findings file of that name (known: {known})")
    return found


def load_findings(path: Path) -> Findings:
    """A findings file read and checked: every problem is one line naming the file, the finding and the field."""
    data = read_yaml(path)
    spec = from_mapping(FindingsFile, data, str(path))
    if not spec.findings:
        raise HarnessError(f"{path}: field 'findings' is empty: declare at least one finding")
    found = tuple(_finding(raw, f"{path}: findings[{i}]") for i, raw in enumerate(spec.findings))
    names = [f.name for f in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HarnessError(f"{path}: finding name '{twice[0]}' is declared twice")
    for f in found:
        unknown = [g for g in f.guards if g not in names]
        if unknown:
            raise HarnessError(f"{path}: finding '{f.name}': field 'guards': no finding named '{unknown[0]}' in the "
                               "file")  # fmt: skip
    return Findings(path, found, spec.description, spec.note)


def check_alpha(alpha: float) -> float:
    """``--alpha``: a level strictly between 0 and 1, else one line naming it."""
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 < alpha < 1):
        raise HarnessError(f"--alpha must lie between 0 and 1 (exclusive), got {alpha:g}")
    return float(alpha)


def verdict(claim: str, low: float | None, high: float | None, threshold: float = 5.0, margin: float = 0.0,
            p: float | None = None, alpha: float = 0.05) -> str:  # fmt: skip
    """The verdict of a measured finding from its 95% CI in points (None: not measured) and, for a paired claim, its
    Holm-adjusted p-value (None: no test, so nothing is shown). See the module's text."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "not measured"
    if claim == "a near zero":
        return "holds" if high < threshold else "does not hold" if low >= threshold else "not shown"
    if claim == "a > b":  # the CI is of B - A: turn it so that positive is the claimed direction
        low, high = -high, -low
    elif claim != "b > a":
        raise ValueError(f"unknown claim {claim!r}")
    significant = p is not None and not math.isnan(p) and p < alpha
    if not significant:
        return "not shown"
    return "holds" if low > margin else "does not hold" if high <= margin else "not shown"
