"""`ganlab report`: one self-contained HTML page for a run or a sweep (pictures embedded, no network).

Every text taken from configs, overrides and summaries is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

from ganlab.quality.scores import better
from ganlab.record.catalog import RunRecord, find_runs, is_study, is_sweep, load_run
from ganlab.record.plotting import log_scale, plt
from ganlab.record.run_folder import CLOSEST_PAIRS_PNG, REPORT_HTML, SUMMARY_JSON, RunFolder, RunFolderError  # noqa: E501

MAX_GRIDS = 200  # sample grids embedded in a run's slider (evenly spaced beyond that)
JOB_GRIDS = 12  # the same in each job of a sweep's report: its size stays what a browser opens at once

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: 3px 9px; border-bottom: 1px solid #eee;
text-align: left; vertical-align: top; } th { background: #f6f6f6; } table.runs th { cursor: pointer; }
td.num { text-align: right;
font-variant-numeric: tabular-nums; } img { max-width: 100%; } .status { font-weight: 600; }
.completed { color: #187a2f; } .failed, .diverged { color: #b3261e; } .interrupted, .running { color: #9a6700; }
.diagnosis { background: #fff6e5; border-left: 4px solid #e8a33d; padding: .5em 1em; margin: .5em 0; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; } .muted { color: #777; }
.verdict { background: #eef5ff; border-left: 4px solid #3d7be8; padding: .6em 1em; margin: .8em 0; font-weight: 600; }
"""

SCRIPT = """
window.addEventListener('error', function (e) {
  document.getElementById('js-errors').textContent += String(e.message) + '\\n';
});
document.querySelectorAll('.slider').forEach(function (box) {
  var frames = JSON.parse(box.querySelector('script[type="application/json"]').textContent);
  var img = box.querySelector('img'), label = box.querySelector('.epoch'), input = box.querySelector('input');
  function show(i) { img.src = frames[i].src; label.textContent = 'epoch ' + frames[i].epoch; }
  input.max = frames.length - 1; input.value = frames.length - 1;
  input.addEventListener('input', function () { show(Number(input.value)); });
  show(frames.length - 1);
});
// Tables of runs: click a header to sort (numbers as numbers; again to reverse), type to filter.
// The page's address may carry both: report.html#sort=best_score&filter=dropout=0.3
function sortBy(tbl, col, descending) {
  var rows = Array.prototype.slice.call(tbl.tBodies[0].rows);
  function key(r) { var c = r.cells[col], v = c.dataset.value; return v === undefined ? c.textContent : Number(v); }
  rows.sort(function (a, b) {
    var x = key(a), y = key(b), n = typeof x === 'number' && typeof y === 'number';
    var order = n ? x - y : String(x).localeCompare(String(y));
    return descending ? -order : order;
  });
  rows.forEach(function (r) { tbl.tBodies[0].appendChild(r); });
  tbl.dataset.sorted = tbl.tHead.rows[0].cells[col].textContent + (descending ? ' desc' : ' asc');
}
function filterRows(tbl, text) {
  var shown = 0;
  Array.prototype.forEach.call(tbl.tBodies[0].rows, function (r) {
    var keep = r.textContent.indexOf(text) >= 0;
    r.hidden = !keep; shown += keep ? 1 : 0;
  });
  tbl.dataset.shown = shown;
}
document.querySelectorAll('table.runs').forEach(function (tbl) {
  var input = tbl.previousElementSibling;
  Array.prototype.forEach.call(tbl.tHead.rows[0].cells, function (th, col) {
    th.addEventListener('click', function () {
      var again = tbl.dataset.sorted === th.textContent + ' asc';
      sortBy(tbl, col, again);
    });
  });
  input.addEventListener('input', function () { filterRows(tbl, input.value); });
});
(function () {
  var params = new URLSearchParams(location.hash.slice(1)), tbl = document.querySelector('table.runs');
  if (!tbl) return;
  var heads = Array.prototype.map.call(tbl.tHead.rows[0].cells, function (c) { return c.textContent; });
  var sort = heads.indexOf(params.get('sort')), filter = params.get('filter');
  if (sort >= 0) sortBy(tbl, sort, false);
  if (filter) { tbl.previousElementSibling.value = filter; filterRows(tbl, filter); }
})();
document.body.dataset.ready = 'yes';
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def compact(png: bytes) -> bytes:
    """A plot's PNG in 256 colours (matplotlib writes 32-bit RGBA): the same picture to the eye, a third to a
    fifth of the bytes; the run folder's own file is not changed."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def img_file(path: Path, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="{data_uri(compact(path.read_bytes()))}">' if path.is_file() else ""


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else esc(value)


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f'<td class="num" data-value="{value!r}">{_number(value)}</td>'
    return f"<td>{_number(value)}</td>"


def table(rows: Iterable[dict[str, Any]], columns: list[str], runs: bool = False) -> str:
    """An HTML table; `runs`: sortable by a click on a header and filtered by the text box above it."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    tag = ('<input class="filter" placeholder="filter runs (any text)" aria-label="filter runs"><table class="runs">'
           if runs else "<table>")
    return f"{tag}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><pre id="js-errors" hidden></pre>{body}<script>{SCRIPT}</script></body></html>')


# ------------------------------------------------------------------------------------ run
def _quality_plot(run: RunFolder, metric: str, floor: float | None) -> str:
    columns = run.read_columns(run.quality_csv)
    if metric not in columns:
        return ""
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.plot(columns["epoch"], columns[metric], marker=".", color="tab:purple", label="this run")
    if floor:
        ax.axhline(floor, color="0.4", ls="--", lw=1, label="real vs real")
        ax.legend(fontsize=8)
    log_scale(ax)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} at each evaluation ({better(metric)})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return f'<img alt="{esc(metric)} over epochs" src="{data_uri(compact(buffer.getvalue()))}">'


def _slider(run: RunFolder, most: int = MAX_GRIDS) -> str:
    grids = sorted(run.samples.glob("epoch_*.png"))
    if len(grids) > most:
        step = len(grids) / most
        grids = [grids[int(i * step)] for i in range(most - 1)] + [grids[-1]]
    if not grids:
        return "<p class='muted'>no sample grids</p>"
    frames = [{"epoch": int(p.stem.split("_")[1]), "src": data_uri(p.read_bytes())} for p in grids]
    payload = json.dumps(frames).replace("</", "<\\/")
    return (f'<div class="slider"><input type="range" min="0" step="1" aria-label="epoch"> '
            f'<span class="epoch"></span><br><img alt="sample grid"><script type="application/json">{payload}'
            f"</script></div>")


def _classes(record: RunRecord) -> str:
    """A conditional run: which class each grid row holds, and the best evaluation's per-class scores."""
    per_class = record.best.get("per_class") if record.best else None
    if not per_class:
        return ""
    weakest = (record.quality.get("weakest_class") or {}).get("class")
    rows = [{**c, "": "weakest" if c["class"] == weakest else ""} for c in per_class]
    return (f"<p>One class per row, top to bottom: {esc(', '.join(c['name'] for c in per_class))}.</p>"
            "<h2>Classes</h2><p>At the best evaluation: how often the yardstick classifier sees the class asked "
            "for (accuracy), and the Frechet distance to the real images of that class (fd, lower is better).</p>"
            + table(rows, ["class", "name", "n", "accuracy", "fd", ""]))


def run_section(record: RunRecord, heading: str = "h1", grids: int = MAX_GRIDS) -> str:
    folder, s, q = RunFolder(record.path), record.summary, record.quality
    status = esc(record.status)
    parts = [f"<{heading}>{esc(s.get('name', record.path.name))} "
             f"<span class='status {status}'>{status}</span></{heading}>",
             f"<p class='muted'>{esc(record.path)}<br>overrides: {esc(' '.join(record.overrides) or '(none)')}</p>",
             f"<div class='verdict'>{esc(record.headline())}</div>"]
    facts = {"epochs": s.get("epochs_done"), "steps": s.get("steps_done"), "duration (s)": s.get("duration_s"),
             "device": s.get("device"), "started": s.get("started")}
    if record.best:
        se = s.best_scores.get(f"{q['metric']}_se")
        facts.update({f"best {q['metric']}": record.best.get("score"), "best epoch": record.best.get("epoch")})
        if q.get("tied_with_best"):
            facts["other epochs within noise of the best"] = ", ".join(f"{e:g}" for e in q["tied_with_best"])
        if isinstance(se, (int, float)):
            facts["its measurement noise (standard error)"] = se
        gap = q.get("best_vs_last") or {}
        if gap.get("relative"):
            facts["last evaluation vs the best"] = f"{gap['relative']:+.0%} (epoch {gap.get('last_epoch')})"
    if s.get("error"):
        facts["error"] = s["error"]
    parts.append(table([{"": k, "value": v} for k, v in facts.items()], ["", "value"]))
    if q:
        keys = list((q.get("floor") or {}).keys())
        rows = [{"score": k, "best": s.best_scores.get(k), "last": s.final_scores.get(k),
                 "real vs real": q["floor"].get(k)} for k in keys]
        info = q.get("scored_with") or {}
        parts += ["<h2>Quality</h2>", table(rows, ["score", "best", "last", "real vs real"]),
                  f"<p class='muted'>scored in the {esc(info.get('feature_space'))}"
                  + (f", classifier {esc(info.get('hash'))} (test accuracy {esc(info.get('test_accuracy'))})"
                     if info.get("hash") else "") + "</p>",
                  _quality_plot(folder, q["metric"], (q.get("floor") or {}).get(q["metric"]))]
    diagnoses = s.get("diagnoses") or []
    parts.append("<h2>Diagnoses</h2>" + ("".join(
        f"<div class='diagnosis'><b>{esc(d['message'])}</b><br>step {esc(d['step'])}: {esc(d['evidence'])}"
        f"<br>Try: <code>{esc(d['suggestion'])}</code></div>" for d in diagnoses) or "<p>none</p>"))
    parts += ["<h2>Samples</h2>", _slider(folder, grids), _classes(record), "<h2>History</h2>",
              img_file(folder.history_png, "history")]
    pairs = record.path / CLOSEST_PAIRS_PNG
    if pairs.is_file():
        copy_rate = record.summary.best_scores.get("copy_rate")
        parts += ["<h2>Nearest training images</h2>",
                  f"<p>The best epoch's generated samples nearest to a training image, each beside that image "
                  f"(in the yardstick's feature space). Copy rate {_number(copy_rate)}: the share of samples nearer "
                  f"to a training image than 95% of held-out real images are (held-out real images: 0.05).</p>",
                  img_file(pairs, "closest pairs")]
    config = record.path / ".hydra" / "config.yaml"
    if config.is_file():
        parts.append(f"<h2>Config</h2><pre>{esc(config.read_text())}</pre>")
    return "\n".join(p for p in parts if p)


# ---------------------------------------------------------------------------------- sweep
def sweep_section(folder: Path, runs: list[RunRecord]) -> str:
    from ganlab.judging.compare import compare
    from ganlab.judging.figures import write_figures
    from ganlab.judging.verdict import format_comparison, verdicts

    rows = [{**r.row(), "job": r.path.name} for r in sorted(runs, key=lambda r: r.path.name)]
    parts = [f"<h1>Sweep {esc(folder.name)}</h1><p class='muted'>{esc(folder)}: {len(runs)} jobs</p>"]
    try:
        comparison = compare(runs)
    except ValueError as e:
        parts.append(f"<p>No comparison: {esc(e)}</p>")
        comparison = None
    else:
        parts.append("<div class='verdict'>" + "<br>".join(map(esc, verdicts(comparison))) + "</div>")
    parts.append(table(rows, ["job", "status", "duration_s", "steps", "metric", "best_score", "best_epoch",
                              "diagnoses", "error"], runs=True))
    if comparison is not None:
        figures = write_figures(comparison, folder / "compare")
        parts += ["<h2>Which change helped</h2>", f"<pre>{esc(format_comparison(comparison))}</pre>"]
        parts += [img_file(f, f.stem) for f in figures]
    parts.append("<h2>Jobs</h2>")
    parts += [f"<details><summary>{esc(r.path.name)} <span class='status {esc(r.status)}'>{esc(r.status)}</span>"
              f"</summary>{run_section(r, heading='h3', grids=JOB_GRIDS)}</details>" for r in runs]
    return "\n".join(parts)


def write_report(path: Path, out: Path | None = None) -> Path:
    path = Path(path)
    if is_sweep(path) or is_study(path):
        runs = find_runs(path)
        if not runs:
            raise ValueError(f"{path} holds no runs yet")
        body, title = sweep_section(path, runs), f"sweep {path.name}"
    elif (path / SUMMARY_JSON).is_file():
        record = load_run(path)
        if record.problem:
            raise RunFolderError(record.problem)
        body, title = run_section(record), f"run {record.summary.get('name', path.name)}"
    else:
        raise ValueError(f"{path} is neither a run folder (summary.json) nor a sweep folder (multirun.yaml)")
    out = Path(out) if out else path / REPORT_HTML
    out.write_text(_page(title, body), encoding="utf-8")
    return out
