"""report.html: one self-contained page per run folder, readable offline in any browser.

The page holds the run's metrics, its configuration, the last epochs of its history and its
pictures, embedded as base64 data URIs. It loads nothing from anywhere (a Content-Security-Policy
forbids it), needs no script, and is written through a temporary file and a rename.
"""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import __version__
from .io import write_atomic

__all__ = ["REPORT_FILE", "format_value", "write_report"]

REPORT_FILE = "report.html"
HISTORY_ROWS = 5  # the last epochs shown in the history table

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
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { white-space: pre-wrap; word-break: break-word; }
.notes { white-space: pre-wrap; }
.figures { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #555; margin-top: 0.3rem; }
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


def _config_value(value) -> str:
    """Configuration values: strings as they are, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False, default=str)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _metrics_table(metrics: Mapping) -> str:
    rows = []
    for name, value in metrics.items():
        cls = ' class="num"' if _is_number(value) else ""
        exact = f' title="{html.escape(repr(value))}"' if _is_number(value) else ""
        rows.append(
            f"<tr><th scope=row>{html.escape(str(name))}</th>"
            f"<td{cls}{exact}>{html.escape(format_value(value))}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="2">no metrics recorded</td></tr>')
    return (
        '<table id="metrics">\n<thead><tr><th>metric</th><th>value</th></tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def _config_table(config: Mapping) -> str:
    rows = [
        f"<tr><th scope=row>{html.escape(str(key))}</th>"
        f"<td><code>{html.escape(_config_value(value))}</code></td></tr>"
        for key, value in config.items()
    ]
    if not rows:
        rows.append('<tr><td colspan="2">no configuration recorded</td></tr>')
    return (
        '<table id="config">\n<thead><tr><th>parameter</th><th>value</th></tr></thead>\n'
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
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


def _figure(caption: str, path) -> str:
    """An image embedded as a data URI, or a figure whose caption says the file is missing."""
    path = Path(path)
    caption_html = html.escape(str(caption))
    if not path.is_file():
        return (
            f'<figure class="missing"><figcaption>{caption_html} (missing: '
            f"{html.escape(path.name)})</figcaption></figure>"
        )
    mime = _MIME.get(path.suffix.lower(), "image/png")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:{mime};base64,{data}" alt="{caption_html}">'
        f"<figcaption>{caption_html}</figcaption></figure>"
    )


def write_report(
    run_dir: str | os.PathLike,
    *,
    title: str,
    config: Mapping,
    metrics: Mapping[str, float | str],
    history: Sequence[Mapping] | None = None,
    images: Mapping[str, str | os.PathLike] | None = None,
    notes: str | None = None,
) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path.

    ``metrics`` and ``config`` become the tables ``#metrics`` and ``#config`` in the order
    given; ``history`` (per-epoch dicts) adds a table of its last epochs; each of ``images``
    is embedded in a ``<figure>`` captioned with its key, and one whose file does not exist
    gets a caption saying it is missing.
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
    parts += ["<h2>Metrics</h2>", _metrics_table(metrics)]
    if images:
        figures = "\n".join(_figure(key, path) for key, path in images.items())
        parts += ["<h2>Figures</h2>", f'<div class="figures">\n{figures}\n</div>']
    if history is not None:
        parts += ["<h2>Training history</h2>", _history_section(history)]
    parts += ["<h2>Configuration</h2>", _config_table(config)]
    parts += [
        f"<footer>Made by vaekit {html.escape(__version__)}. "
        "Log-densities are in nats per example.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    path = run_dir / REPORT_FILE
    write_atomic(path, "\n".join(parts).encode("utf-8"))
    return path
