"""``harness report``: one self-contained HTML page of the results database.

The page holds the comparison table (published rows beside ours), the delta table against a
baseline, the leaderboard, every plot, the training-loss curves of the models trained in this home with
a table of them, and for each run a gallery of sample predictions with their prompt images as
thumbnails, answers, references and scores, filterable by correct / partly correct / incorrect. Pictures are embedded as data URIs (each image once), so the file can be mailed or
attached to a CI run as is. A ``summary.md`` beside it holds the same tables as Markdown.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from harness import __version__, conditions, paths
from harness.errors import HarnessError
from harness.results.escape import markdown_frame
from harness.training.curves import ENDS

log = logging.getLogger("harness")

THUMBNAIL_PX = 96
_IMAGE_KEY = re.compile(r"<image:([^>]*)>")


def outcome(score: float | None) -> str:
    """The filter class of a sample: full credit, partial credit, or none."""
    if score is None:
        return "unscored"
    return "correct" if score >= 1 else "incorrect" if score <= 0 else "partial"


def _thumbnail(pixels) -> str:
    from PIL import Image

    img = Image.fromarray(pixels.numpy())
    img.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


class _Images:
    """Thumbnails by (data source, image key), each encoded once; datasets loaded on first use."""

    def __init__(self) -> None:
        self.uris: dict[str, str] = {}
        self._datasets: dict[str, object] = {}

    def ref(self, task_config: dict, key: str) -> str | None:
        from harness.config import TaskConfig, from_mapping
        from harness.evaluation import tasks

        source = f"{task_config.get('source')}|{task_config.get('hub') or ''}"
        ref = f"{source}|{key}"
        if ref in self.uris:
            return ref
        if source not in self._datasets:
            try:
                self._datasets[source] = tasks.load(from_mapping(TaskConfig, task_config, "run config"))
            except HarnessError as err:  # data not on this machine: the gallery shows ids only
                log.info("report: no thumbnails for %s (%s)", source, err)
                self._datasets[source] = None
        dataset = self._datasets[source]
        if dataset is None:
            return None
        try:
            self.uris[ref] = _thumbnail(dataset.image(key))
        except HarnessError:
            return None
        return ref


def _table_html(table: pd.DataFrame | None, caption: str, index: bool = True) -> str:
    if table is None:  # what could not be compared, said where its table would be
        return f'<p class="note">{html.escape(caption)}</p>'
    table = table.rename_axis(columns=None)
    body = table.to_html(index=index, escape=True, na_rep="", border=0, classes="results")
    return f"<h3>{html.escape(caption)}</h3>\n{body}"


def _runs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["task", "model", "images", "shots", "seed"], kind="stable").reset_index(drop=True)


def _read_samples(run_dir: str) -> list[dict]:
    from harness.results.rundir import read_samples

    path = Path(run_dir) / "samples.jsonl"
    return read_samples(path) if path.exists() else []


def _gallery(run: pd.Series, images: _Images, per_run: int) -> str:
    from harness.results.rundir import RunDir

    folder = RunDir(Path(run["run_dir"]))
    task_config = folder.config().get("task_config") or {} if folder.config_path.exists() else {}
    samples = _read_samples(run["run_dir"])
    counts = Counter(outcome(s.get("score")) for s in samples)
    black = run["images"] == "black"
    cards = []
    for s in samples[:per_run]:
        if "skipped" in s:  # --skip-bad-samples: the reason instead of an answer
            cards.append(f'<div class="card skipped"><b>skipped:</b> {html.escape(s["skipped"])}</div>')
            continue
        thumbs = []
        for key in _IMAGE_KEY.findall(s.get("prompt", "")):
            ref = images.ref(task_config, key) if task_config else None
            title = html.escape(key + (" (the model saw it blacked out)" if black else ""), quote=True)
            if ref is None:
                thumbs.append(f'<span class="noimg" title="{title}">{html.escape(key)}</span>')
            else:
                thumbs.append(f'<img data-img="{html.escape(ref, quote=True)}" title="{title}" alt="{title}"'
                              f'{" class=blacked" if black else ""}>')  # fmt: skip
        refs = sorted(set(s.get("references", [])))
        score = s.get("score")
        cards.append(
            f'<div class="card {outcome(score)}">'
            f'<div class="thumbs">{"".join(thumbs)}</div>'
            f'<div class="prompt">{html.escape(_IMAGE_KEY.sub("[img]", s.get("prompt", "")))}</div>'
            f'<div><b>answer:</b> <span class="pred">{html.escape(repr(s.get("prediction", "")))}</span></div>'
            f'<div><b>references:</b> {html.escape(" | ".join(refs[:6]) + (" …" if len(refs) > 6 else ""))}</div>'
            f'<div><b>score:</b> {"" if score is None else f"{score:.3g}"} · <code>{html.escape(str(s.get("id")))}</code></div>'
            "</div>"
        )  # fmt: skip
    partial = " · partial (--limit)" if run["partial"] else ""
    label = conditions.label(run["images"])
    summary = (
        f"{html.escape(run['task'])} · {html.escape(run['model'])} · {label} · {run['shots']}-shot · seed {run['seed']}"
        f" — {html.escape(run['metric'])} {run['score']:.2f} (n={run['n']}{partial}); "
        f"{counts['correct']} correct, {counts['partial']} partly, {counts['incorrect']} incorrect"
    )
    shown = f"<p class='note'>showing the first {min(per_run, len(samples))} of {len(samples)} samples</p>"
    return (
        f'<details class="run" data-task="{html.escape(run["task"], quote=True)}" '
        f'data-model="{html.escape(run["model"], quote=True)}"><summary>{summary}</summary>{shown}'
        f'<div class="gallery">{"".join(cards)}</div></details>'
    )


def _plots(frame: pd.DataFrame) -> list[tuple[str, str]]:
    from harness.results.plots import plot_all

    with tempfile.TemporaryDirectory() as tmp:
        return [
            (p.stem, "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode())
            for p in plot_all(frame, Path(tmp), losses=False)
        ]


def _training() -> tuple[pd.DataFrame | None, str | None]:
    """The training-loss table of every trained model with a train_log.jsonl, and the plot of their curves
    as a data URI; (None, None) when nothing was trained here."""
    from harness.results.plots import loss_curves
    from harness.training.curves import summary_rows, trained_models

    models = trained_models()
    if not models:
        return None, None
    with tempfile.TemporaryDirectory() as tmp:
        (plot,) = loss_curves(models, Path(tmp), each=False)
        uri = "data:image/png;base64," + base64.b64encode(plot.read_bytes()).decode()
    return pd.DataFrame(summary_rows(models)), uri


def _tables(frame: pd.DataFrame, baseline: str | None) -> list[tuple[str, pd.DataFrame | None, bool]]:
    from harness.results import tables
    from harness.results.published import load_published

    out = [("Comparison: mean ± std over seeds (n = seeds); * = partial (--limit); published rows are the papers' "
            "own settings", tables.comparison(frame, load_published()), True)]  # fmt: skip
    if baseline:
        try:  # what cannot be compared is left out of the page, with a note saying why
            footer = tables.compare_footer(tables.comparisons(frame, baseline))
            out.append((f"Δ vs {baseline}. {footer}", tables.compare(frame, baseline), True))
        except HarnessError as err:
            out.append((f"No Δ table against {baseline}: {err}", None, True))
    board = tables.leaderboard(frame)
    columns = ["task", "shots", "model", "images", "metric", "mean", "std", "ci95_low", "ci95_high", "n_samples",
               "n_seeds", "partial"]  # fmt: skip
    out.append(("Leaderboard (the full CSV: `harness leaderboard --csv FILE`)", board[columns], False))
    return out


def default_baseline(frame: pd.DataFrame) -> str | None:
    """The frozen model with the most real-image runs, the natural baseline of a Frozen ablation, named as the
    tables name it (with its version where one name covers differently trained models)."""
    from harness.results.tables import model_versions

    frame = frame.assign(version=model_versions(frame))
    frozen = frame[frame["model"].str.endswith("-frozen") & (frame["images"] == "real")]
    if frozen.empty:
        return None
    counts = frozen["version"].value_counts()
    return sorted(counts.index, key=lambda v: (-counts[v], v))[0]


def build(frame: pd.DataFrame, out: Path, baseline: str | None = None, per_run: int = 24) -> Path:
    """Write ``out/index.html`` and ``out/summary.md``; returns the HTML's path."""
    if frame.empty:
        raise HarnessError("no finished runs in the results database yet: run `harness run` first")
    baseline = baseline or default_baseline(frame)
    tables = _tables(frame, baseline)
    plots = _plots(frame)
    curves, curves_uri = _training()
    images = _Images()
    galleries = [_gallery(run, images, per_run) for _, run in _runs(frame).iterrows()]
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    head = f"frozen-harness {__version__} · {len(frame)} runs · {created}"
    page = TEMPLATE.format(
        head=html.escape(head),
        tables="\n".join(_table_html(t, caption, index) for caption, t, index in tables),
        plots="\n".join(
            f'<figure><img src="{uri}" alt="{html.escape(name)}"><figcaption>{html.escape(name)}</figcaption></figure>'
            for name, uri in plots
        ),  # fmt: skip
        training=_training_html(curves, curves_uri),
        runs="\n".join(galleries),
        images=json.dumps(images.uris).replace("</", "<\\/"),
    )
    out.mkdir(parents=True, exist_ok=True)
    paths.atomic_write_text(out / "index.html", page)
    summary = [f"# Results summary\n\n{head}\n"]
    for caption, table, index in tables:
        if table is None:
            summary.append(f"_{caption}_\n")
            continue
        summary.append(
            f"## {caption}\n\n{tabulate(markdown_frame(table), headers='keys', tablefmt='github', showindex=index)}\n"
        )
    if curves is not None:
        shown = curves.map(lambda v: "" if v is None or v != v else f"{v:.4g}" if isinstance(v, float) else str(v))
        table = tabulate(
            markdown_frame(shown), headers="keys", tablefmt="github", showindex=False, disable_numparse=True
        )
        summary.append(f"## {TRAINING_CAPTION}\n\n{table}\n")
    summary.append("## Plots (in index.html)\n\n" + "\n".join(f"- {name}" for name, _ in plots) + "\n")
    paths.atomic_write_text(out / "summary.md", "\n".join(summary))
    return out / "index.html"


TRAINING_CAPTION = (f"Training loss: each model's logged steps; first and last loss are the means of its first and last "
                    f"{ENDS} steps; seconds of training as recorded, summed over resumptions")  # fmt: skip


def _training_html(curves: pd.DataFrame | None, uri: str | None) -> str:
    if curves is None:
        return '<p class="note">no trained model with a training log (train_log.jsonl) in this harness home</p>'
    figure = f'<figure><img src="{uri}" alt="loss-curves"><figcaption>loss-curves</figcaption></figure>'
    body = curves.to_html(index=False, escape=True, na_rep="", border=0, classes="results training",
                          float_format=lambda v: f"{v:.4g}")  # fmt: skip
    return f"<h3>{html.escape(TRAINING_CAPTION)}</h3>\n{body}\n{figure}"


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>frozen-harness report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table.results {{ border-collapse: collapse; font-size: 13px; margin-bottom: 1em; }}
table.results td, table.results th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }} figure img {{ max-width: 560px; }}
.gallery {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.card {{ border: 2px solid #999; border-radius: 6px; padding: 6px; width: 300px; font-size: 12px; }}
.card.correct {{ border-color: #2a2; }} .card.incorrect {{ border-color: #c33; }} .card.partial {{ border-color: #d90; }}
.thumbs img {{ width: 64px; height: 64px; object-fit: cover; margin-right: 3px; }}
.thumbs img.blacked {{ outline: 3px solid #000; opacity: 0.6; }}
.noimg {{ display: inline-block; font-size: 10px; background: #eee; padding: 2px; margin-right: 3px; }}
.prompt {{ white-space: pre-wrap; color: #555; max-height: 6em; overflow: auto; }}
.hidden {{ display: none; }} .note {{ color: #666; font-size: 12px; }}
#controls {{ position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid #ddd; }}
</style></head><body>
<h1>frozen-harness report</h1><p class="note">{head}</p>
<h2>Tables</h2>
{tables}
<h2>Plots</h2>
{plots}
<h2>Training</h2>
{training}
<h2>Runs</h2>
<div id="controls">show samples:
<label><input type="radio" name="show" value="all" checked> all</label>
<label><input type="radio" name="show" value="correct"> correct</label>
<label><input type="radio" name="show" value="partial"> partly correct</label>
<label><input type="radio" name="show" value="incorrect"> incorrect</label>
· runs matching <input id="runfilter" placeholder="task or model">
<span id="render-check" class="note"></span></div>
{runs}
<script>
const IMAGES = {images};
function applyFilters() {{
  const show = document.querySelector('input[name=show]:checked').value;
  const text = document.getElementById('runfilter').value.toLowerCase();
  document.querySelectorAll('.card').forEach(c => c.classList.toggle('hidden', show !== 'all' && !c.classList.contains(show)));
  document.querySelectorAll('details.run').forEach(d => {{
    const name = (d.dataset.task + ' ' + d.dataset.model).toLowerCase();
    d.classList.toggle('hidden', text !== '' && !name.includes(text));
  }});
}}
document.querySelectorAll('input[name=show]').forEach(r => r.addEventListener('change', applyFilters));
document.getElementById('runfilter').addEventListener('input', applyFilters);
document.querySelectorAll('img[data-img]').forEach(img => {{ img.src = IMAGES[img.dataset.img]; }});
// "#show=incorrect&open" (or any outcome) in the address sets the filter and opens every run.
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get('show')) {{ document.querySelector(`input[name=show][value=${{hash.get('show')}}]`).checked = true; }}
if (hash.has('open')) {{ document.querySelectorAll('details.run').forEach(d => d.open = true); }}
applyFilters();
window.addEventListener('load', () => {{
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const check = document.getElementById('render-check');
  check.textContent = `${{ok}} of ${{imgs.length}} images rendered`;
  check.dataset.rendered = ok; check.dataset.total = imgs.length;
}});
</script>
</body></html>
"""
