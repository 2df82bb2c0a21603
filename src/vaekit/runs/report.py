"""report.html: one self-contained page per run folder, readable offline in any browser.

The page holds the command that trains the run again, the held-out metrics in words with their
units, the facts of training (why it stopped, the weights kept, its warnings), the pictures with
a caption saying what each shows, the last epochs of the history and the configuration as a
table. Pictures are embedded as base64 data URIs. The page loads nothing from anywhere (a
Content-Security-Policy forbids it), needs no script, and is written through a temporary file
and a rename.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import __version__
from ..io import write_atomic
from .metric_text import METRICS, QUALIFIERS, value_text

__all__ = ["REPORT_FILE", "format_value", "write_report"]

REPORT_FILE = "report.html"
HISTORY_ROWS = 5  # the last epochs shown in the history table
WIDE_FIGURE = 800  # pictures wider than this, in pixels, take a whole row, not a column

_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; }
th[scope=row] { font-weight: normal; }
tr.group th { background: #e8eef6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.list { text-align: right; font-variant-numeric: tabular-nums; }
td.unit { color: #555; }
td code, th code { white-space: pre-wrap; word-break: break-word; }
.notes { white-space: pre-wrap; }
.note { font-size: 0.85rem; color: #555; }
#command { background: #f6f8fa; border: 1px solid #ddd; border-radius: 4px;
           padding: 0.6rem 0.8rem; white-space: pre-wrap; word-break: break-word; }
ul.warnings { padding-left: 1.2rem; color: #8a4b00; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 30rem), 1fr));
           gap: 1.5rem 2rem; align-items: start; }
figure { margin: 0; max-width: 100%; }
figure.wide { grid-column: 1 / -1; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; margin-top: 0.3rem; }
.figure-title { display: block; font-weight: 600; color: #222; }
.figure-title::first-letter { text-transform: uppercase; }
figure.missing figcaption { color: #a00; }
footer { margin-top: 3rem; font-size: 0.8rem; color: #888; }
"""


def format_value(value) -> str:
    """A metric or history value as the report shows it (floats: 2 decimals, or 3 digits)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    magnitude = abs(number)
    if magnitude == 0:
        return "0.00"
    if magnitude >= 1e7 or magnitude < 1e-3:
        return f"{number:.3e}"
    if magnitude >= 1:
        return f"{number:.2f}"  # nats, seconds, counts of a few digits: two decimals
    return f"{number:.3g}"  # a fraction, an accuracy, a rate: three significant digits


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _table(table_id: str, head: Sequence[str], groups: Sequence[tuple[str, list[str]]]) -> str:
    """A table of row groups, each under a heading row that spans the columns."""
    width = len(head)
    bodies = [
        f'<tbody><tr class="group"><th colspan="{width}" scope="rowgroup">'
        f"{html.escape(heading)}</th></tr>\n" + "\n".join(rows) + "\n</tbody>"
        for heading, rows in groups
        if rows
    ]
    if not bodies:
        bodies = [f'<tbody><tr><td colspan="{width}">nothing recorded</td></tr></tbody>']
    cells = "".join(f"<th>{html.escape(name)}</th>" for name in head)
    return f'<table id="{table_id}">\n<thead><tr>{cells}</tr></thead>\n' + "\n".join(
        [*bodies, "</table>"]
    )


def _row(name: str, text: str, unit: str = "", exact=None) -> str:
    """A row of the metrics table; a number keeps its exact value as a tooltip."""
    if _is_number(exact):
        attrs = f' class="num" title="{html.escape(repr(exact))}"'
    else:
        attrs = ' class="list"' if isinstance(exact, list) else ""
    return (
        f"<tr><th scope=row>{html.escape(name)}</th><td{attrs}>{html.escape(text)}</td>"
        f'<td class="unit">{html.escape(unit)}</td></tr>'
    )


def _metric_rows(metrics: Mapping, held_out: bool) -> list[str]:
    """One group's metrics: those ``METRICS`` describes in its order, then others by name."""
    names = [n for n in METRICS if n in metrics and n != "n_examples"]
    names += [n for n in metrics if n not in METRICS and n not in QUALIFIERS]
    rows = []
    for name in names:
        metric = METRICS.get(name)
        if (metric.held_out if metric else True) == held_out:
            words, unit = (metric.words, metric.unit) if metric else (str(name), "")
            text = value_text(name, metrics, format_value)
            rows.append(_row(words, text, unit, metrics[name]))
    return rows


def _stop_sentence(training: Mapping, epochs) -> str:
    """Why training stopped and which weights it kept, in the words of the shell's summary."""
    stopped_by = training["stopped_by"]
    if stopped_by == "early_stopping":
        why = (
            f"Training stopped early at epoch {epochs}: no better validation loss for "
            f"{training['patience']} epochs"
        )
    elif stopped_by == "max_epochs":
        why = f"Training stopped at max_epochs ({epochs} epochs)"
    elif stopped_by == "max_time":
        why = "Training stopped when max_time ran out"
    else:
        why = f"Training stopped by {stopped_by}"
    best = training.get("best_epoch")
    if best is None:
        return f"{why}."
    kept = "its last epoch" if best == epochs else f"epoch {best}"
    return f"{why}; it kept the weights of {kept}."


def _metrics_section(metrics: Mapping, held_out: int | None, training: Mapping) -> str:
    """The metrics table (held-out measures, then training), its warnings and a note on ±."""
    n = held_out if held_out is not None else metrics.get("n_examples")
    rows = "the held-out rows" if n is None else f"the {n} held-out rows"
    groups = [
        (f"Held-out: measured on {rows}, which training never saw", _metric_rows(metrics, True)),
        ("Training", _metric_rows(metrics, False)),
    ]
    parts = [_table("metrics", ("measure", "value", "unit"), groups)]
    if "stopped_by" in training:
        sentence = _stop_sentence(training, metrics.get("epochs"))
        parts.append(f'<p id="stopped">{html.escape(sentence)}</p>')
    if training.get("warnings"):
        items = "".join(f"<li>Warning: {html.escape(str(w))}</li>" for w in training["warnings"])
        parts.append(f'<ul class="warnings" id="warnings">{items}</ul>')
    if QUALIFIERS & set(metrics):
        parts.append(
            '<p class="note">± is the standard error of the mean over the held-out rows; K is '
            "the number of importance samples per row. Nats are natural-log units, summed over "
            "the features of a row.</p>"
        )
    return "\n".join(parts)


def _config_value(value) -> str:
    """A configuration value as a person reads it: none, yes/no, lists joined by commas."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_config_value(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_config_value(v)}" for k, v in value.items())
    return str(value)


def _config_section(config: Mapping[str, Mapping]) -> str:
    """The configuration as one (parameter, value) table, a group per section."""
    groups = [
        (
            str(heading),
            [
                f"<tr><th scope=row><code>{html.escape(str(key))}</code></th>"
                f"<td>{html.escape(_config_value(value))}</td></tr>"
                for key, value in section.items()
            ],
        )
        for heading, section in config.items()
    ]
    return _table("config", ("parameter", "value"), groups)


def _command_section(command: str) -> str:
    return (
        '<p class="note">This command trains the run again: the same data, split, seed and '
        "parameters. It writes a new folder under <code>runs/</code>; add <code>--out "
        "FOLDER</code> to choose another.</p>\n"
        f'<pre id="command"><code>{html.escape(command)}</code></pre>'
    )


def _history_section(history: Sequence[Mapping]) -> str:
    n = len(history)
    if n == 0:
        return '<p id="history-note">No epochs were recorded.</p>'
    shown = list(history[-HISTORY_ROWS:])
    columns: list[str] = []
    for record in shown:
        columns.extend(str(k) for k in record if str(k) not in columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for record in shown:
        by_name = {str(k): v for k, v in record.items()}
        cells = "".join(
            f'<td class="num">{html.escape(format_value(by_name.get(c)))}</td>' for c in columns
        )
        body.append(f"<tr>{cells}</tr>")
    epochs = "1 epoch" if n == 1 else f"{n} epochs"
    note = f"{epochs}; the last {len(shown)} shown." if n > len(shown) else f"{epochs}."
    return (
        f'<p id="history-note">{html.escape(note)} Losses are in nats per example.</p>\n'
        f'<table id="history">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, None for another format."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _figure(title: str, path, caption: str | None) -> str:
    """An image embedded as a data URI under its title and caption, or a note that it is missing.

    A picture wider than ``WIDE_FIGURE`` pixels takes a whole row.
    """
    path = Path(path)
    heading = f'<span class="figure-title">{html.escape(str(title))}</span>'
    if not path.is_file():
        missing = html.escape(f" (missing: {path.name})")
        return f'<figure class="missing"><figcaption>{heading}{missing}</figcaption></figure>'
    data = path.read_bytes()
    size = _png_size(data)
    wide = ' class="wide"' if size and size[0] > WIDE_FIGURE else ""
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    mime = _MIME.get(path.suffix.lower(), "image/png")
    source = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    text = f' <span class="figure-text">{html.escape(caption)}</span>' if caption else ""
    return (
        f'<figure{wide}><img src="{source}" alt="{html.escape(str(title))}"{dims}>'
        f"<figcaption>{heading}{text}</figcaption></figure>"
    )


def write_report(
    run_dir: str | os.PathLike,
    *,
    title: str,
    metrics: Mapping[str, object],
    config: Mapping[str, Mapping[str, object]],
    held_out: int | None = None,
    training: Mapping[str, object] | None = None,
    command: str | None = None,
    history: Sequence[Mapping] | None = None,
    images: Mapping[str, str | os.PathLike] | None = None,
    captions: Mapping[str, str] | None = None,
    notes: str | None = None,
) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path.

    Parameters
    ----------
    run_dir : str or os.PathLike
        The folder to write to; made if missing.
    title : str
        The page's title and heading.
    metrics : Mapping
        ``vaekit.evaluate``'s numbers, plus ``epochs`` and ``training_seconds``: the table
        ``#metrics`` shows those ``metric_text.METRICS`` describes in words with their units,
        in its order (standard errors as ``±``), then any others under their own names. They
        are grouped as measured on held-out rows or as facts of training.
    config : Mapping of str to Mapping
        Sections (such as "Data", "Estimator parameters") of (parameter, value) rows: the
        table ``#config``.
    held_out : int, optional
        How many held-out rows the metrics were measured on (else ``metrics["n_examples"]``).
    training : Mapping, optional
        ``stopped_by``, ``best_epoch``, ``patience`` and ``warnings``: why training stopped,
        which weights it kept, and the warnings about how it went.
    command : str, optional
        The shell command that trains the run again, shown under the title.
    history : sequence of Mapping, optional
        Per-epoch records: a table of the last epochs.
    images : Mapping of str to path, optional
        Pictures by title, each embedded in a ``<figure>``; one whose file does not exist gets
        a caption saying it is missing.
    captions : Mapping of str to str, optional
        For each title of ``images``, the sentence that says what the picture shows.
    notes : str, optional
        Free text under the title.

    Returns
    -------
    Path
        ``run_dir / "report.html"``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if notes:
        parts.append(f'<p class="notes" id="notes">{html.escape(notes)}</p>')
    if command:
        parts.append(_command_section(command))
    parts += ["<h2>Metrics</h2>", _metrics_section(metrics, held_out, training or {})]
    if images:
        captions = captions or {}
        figures = "\n".join(_figure(k, path, captions.get(k)) for k, path in images.items())
        parts += ["<h2>Figures</h2>", f'<div class="figures">\n{figures}\n</div>']
    if history is not None:
        parts += ["<h2>Training history</h2>", _history_section(history)]
    parts += ["<h2>Configuration</h2>", _config_section(config)]
    parts += [
        f"<footer>Made by vaekit {html.escape(__version__)}.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    path = run_dir / REPORT_FILE
    write_atomic(path, "\n".join(parts).encode("utf-8"))
    return path
