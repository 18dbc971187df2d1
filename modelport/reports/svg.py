"""The report's charts as inline SVG: stage timeline, error histograms, latency per runtime and batch size.

Each chart is one ``<svg class="chart" data-chart=KIND>`` with its own width, height and viewBox, drawn from
``reports/charts.py``'s data with the standard library only. Every text that comes from a manifest (stage,
candidate, runtime names, reasons) is escaped: a manifest is untrusted input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from modelport.profiling.records import LatencyRow
from modelport.reports.charts import ErrorBars, StageBar

__all__ = ["histogram_svg", "latency_svg", "nice_ticks", "timeline_svg"]

STATUS_COLOURS = {"ok": "#2f9e66", "failed": "#d64545", "skipped": "#b8bec8"}
SERIES_COLOURS = ("#3b6fd8", "#e08a2e", "#2f9e66", "#9b59b6", "#d64545", "#17a2b8", "#7f8c8d", "#c2a400")
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12" fill="#2b2f36"'


def _open(kind: str, width: int, height: int, label: str) -> str:
    return (
        f'<svg class="chart" data-chart="{kind}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" {_FONT}>'
        f"<title>{escape(label)}</title>"
    )


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis ticks from 0 up to at least ``top`` (a step of 1, 2 or 5 times a power of ten)."""
    if not top > 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def timeline_svg(bars: Sequence[StageBar], width: int = 760) -> str:
    """One row per stage, its bar from when it started to when it ended, coloured by its status."""
    label_w, right, row_h, top = 120, 70, 22, 8
    total = sum(b.seconds for b in bars)
    ticks = nice_ticks(total)
    scale = (width - label_w - right) / ticks[-1]
    height = top + row_h * len(bars) + 28
    parts = [_open("timeline", width, height, f"stage timeline: {len(bars)} stages, {total:.3g} s")]
    axis_y = top + row_h * len(bars) + 4
    for t in ticks:
        x = label_w + t * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" stroke="#e3e6eb"/>')
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#6b7280">{_fmt(t)} s</text>')
    for i, bar in enumerate(bars):
        y = top + i * row_h
        colour = STATUS_COLOURS.get(bar.status, "#b8bec8")
        x, w = label_w + bar.start * scale, max(bar.seconds * scale, 2.0)  # a 0 s stage still shows as a tick
        why = f" - {bar.reason}" if bar.reason else ""
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(bar.name)}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{colour}">'
            f"<title>{escape(f'{bar.name}: {bar.status}, {bar.seconds:.3f} s{why}')}</title></rect>"
        )
        value = "skipped" if bar.status == "skipped" else f"{bar.seconds:.3g} s"
        parts.append(f'<text x="{x + w + 6:.1f}" y="{y + 15}" fill="#6b7280">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _decade(exponent: int) -> str:
    return f"1e{exponent}"


def histogram_svg(bars: ErrorBars, width: int = 360, height: int = 180) -> str:
    """Elements per error decade (log-scale bins), the exact ones first; a dashed line marks the atol."""
    decades = [f"{_decade(bars.low + i)} to {_decade(bars.low + i + 1)}" for i in range(len(bars.counts))]
    labels = (["= 0"] if bars.exact else []) + decades
    counts = ([bars.exact] if bars.exact else []) + list(bars.counts)
    left, bottom, top, right = 44, 34, 14, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max(counts, default=1), 3)
    offset = 1 if bars.exact else 0
    gap = 0.5 * offset  # half a slot between the exact bar and the decades, so their labels never touch
    slot = plot_w / max(len(counts) + gap, 1)
    total = sum(counts)
    parts = [_open("histogram", width, height, f"{bars.candidate}: absolute error per element ({total} elements)")]
    for t in ticks:
        y = top + plot_h - t / ticks[-1] * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e6eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#6b7280">{t:g}</text>')
    every = max(1, math.ceil(len(bars.counts) / 7))  # at most about 8 decade labels
    for i, n in enumerate(counts):
        h = n / ticks[-1] * plot_h
        x = left + (i + (gap if i >= offset else 0)) * slot
        colour = "#2f9e66" if i < offset else "#3b6fd8"
        parts.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{escape(labels[i])}: {n} elements</title></rect>'
        )
    axis_y = height - bottom + 16
    if offset:
        parts.append(f'<text x="{left + slot / 2:.1f}" y="{axis_y}" text-anchor="middle" fill="#6b7280">= 0</text>')
    decade_labels = range(0, len(bars.counts) + 1, every) if bars.counts else range(0)
    for i in decade_labels:  # at the decade boundaries
        x = left + (offset + gap + i) * slot
        parts.append(
            f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#9aa1ab"/>'
            f'<text x="{x:.1f}" y="{axis_y}" text-anchor="middle" fill="#6b7280">{_decade(bars.low + i)}</text>'
        )
    if bars.atol > 0 and bars.counts:  # where the tolerance's atol falls on the decade axis
        pos = math.log10(bars.atol) - bars.low + offset + gap
        if offset + gap <= pos <= len(counts) + gap:
            x = left + pos * slot
            at_right = x + 30 > width - right  # the label goes left of the line where it would be cut off
            label_x, anchor = (x - 4, "end") if at_right else (x + 4, "start")
            parts.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#d64545" '
                f'stroke-dasharray="4 3"/><text x="{label_x:.1f}" y="{top + 10}" text-anchor="{anchor}" '
                'fill="#d64545">atol</text>'
            )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#9aa1ab"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" fill="#6b7280">'
        "|candidate - reference| (per power of ten)</text></svg>"
    )
    return "".join(parts)


def latency_svg(runtime: str, rows: Sequence[LatencyRow], width: int = 560, height: int = 240) -> str:
    """Median latency (bar) and p95 (whisker) per batch size, one bar per candidate of this runtime."""
    batches = sorted({r.batch for r in rows})
    names = list(dict.fromkeys(r.candidate for r in rows))
    left, bottom, top, right = 52, 48, 14, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max((max(r.p95_ms, r.p50_ms) for r in rows), default=1.0))
    group = plot_w / max(len(batches), 1)
    bar = group * 0.8 / max(len(names), 1)
    parts = [_open("latency", width, height, f"{runtime}: latency per batch size (p50 bars, p95 whiskers)")]
    for t in ticks:
        y = top + plot_h - t / ticks[-1] * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e6eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#6b7280">{_fmt(t)}</text>')
    at = {(r.batch, r.candidate): r for r in rows}
    for g, batch in enumerate(batches):
        gx = left + g * group
        for k, name in enumerate(names):
            row = at.get((batch, name))
            if row is None:
                continue
            x = gx + group * 0.1 + k * bar
            h = row.p50_ms / ticks[-1] * plot_h
            y95 = top + plot_h - row.p95_ms / ticks[-1] * plot_h
            colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
            tip = f"{name}, batch {batch}: p50 {row.p50_ms:.3g} ms, p95 {row.p95_ms:.3g} ms"
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar * 0.9:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(tip)}</title></rect>'
                f'<line x1="{x + bar * 0.45:.1f}" y1="{y95:.1f}" x2="{x + bar * 0.45:.1f}" '
                f'y2="{top + plot_h - h:.1f}" stroke="#2b2f36"/>'
            )
        parts.append(
            f'<text x="{gx + group / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">batch {batch}</text>'
        )
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#9aa1ab"/>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" transform="rotate(-90 12 {top + plot_h / 2:.1f})" ')
    parts.append('text-anchor="middle" fill="#6b7280">ms</text>')
    x = left
    for k, name in enumerate(names):  # the legend, one swatch per candidate
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        parts.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{height - 5}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)
