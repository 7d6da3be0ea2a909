"""The memory plot of a soak: RSS over time from a `bench/soak.py --json` report, as an SVG.

    python bench/soak_plot.py report.json [--out rss.svg] [--title "30-minute soak, SQLite"]

One line (RSS in MiB against minutes since the start), a dashed mark where warm-up ends (the
samples before it are not counted in the growth figure), and the growth after warm-up in the
title, computed as bench/soak.py computes it. The SVG is written by hand: no plotting library.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

if __package__ in (None, ""):  # run as `python bench/soak_plot.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak import WARMUP_SHARE, rss_growth

WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 56, 56  # margins around the plot area
LINE, MARK, GRID, INK = "#1f6fb2", "#c0392b", "#dddddd", "#333333"


@dataclass(frozen=True)
class Axis:
    low: float
    high: float
    ticks: list[float]

    def scale(self, value: float, start: float, end: float) -> float:
        """`value` on this axis mapped onto the pixel range start → end."""
        span = self.high - self.low or 1.0
        return start + (value - self.low) / span * (end - start)


def nice_step(span: float, target: int = 6) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten giving about `target` ticks over `span`."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def axis(low: float, high: float, *, from_zero: bool = False) -> Axis:
    """Round bounds around [low, high] and the ticks between them."""
    if from_zero:
        low = 0.0
    if high <= low:
        high = low + 1.0
    step = nice_step(high - low)
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    count = round((end - start) / step)
    return Axis(start, end, [round(start + i * step, 10) for i in range(count + 1)])


def label(value: float) -> str:
    return f"{value:g}"


def warmup_end_s(samples: list[tuple[float, int]]) -> float | None:
    """The time of the first sample counted after warm-up (None with too few samples)."""
    index = int(len(samples) * WARMUP_SHARE)
    return samples[index][0] if 0 < index < len(samples) else None


def heading(report: dict, samples: list[tuple[float, int]], title: str | None) -> str:
    growth = report.get("rss_growth_after_warmup")
    growth = rss_growth(samples) if growth is None else growth
    minutes = samples[-1][0] / 60 if samples else 0.0
    what = title or f"mingyan soak, {minutes:.0f} min"
    return f"{what}: RSS growth after warm-up {growth:+.1%}"


def svg(report: dict, title: str | None = None) -> str:
    """The plot of `report`'s `rss_kib` samples ([seconds, KiB] pairs) as an SVG document."""
    if not isinstance(report, dict):
        raise ValueError("not a soak report (a JSON object with rss_kib)")
    samples = [(float(t), int(kib)) for t, kib in report.get("rss_kib", [])]
    if len(samples) < 2:
        raise ValueError("the report has fewer than two RSS samples (rss_kib): nothing to plot")
    minutes = [t / 60 for t, _ in samples]
    mib = [kib / 1024 for _, kib in samples]
    x_axis = axis(0.0, max(minutes))
    y_axis = axis(min(mib), max(mib), from_zero=min(mib) < 0.2 * max(mib))
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM

    def x(v: float) -> float:
        return x_axis.scale(v, left, right)

    def y(v: float) -> float:
        return y_axis.scale(v, bottom, top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="28" text-anchor="middle" font-size="15" fill="{INK}">'
        f"{escape(heading(report, samples, title))}</text>",
    ]
    parts += _grid(x_axis, y_axis, x, y, (left, right, top, bottom))
    end = warmup_end_s(samples)
    if end is not None:
        at = x(end / 60)
        parts.append(
            f'<line class="warmup" x1="{at:.1f}" y1="{top}" x2="{at:.1f}" y2="{bottom}" '
            f'stroke="{MARK}" stroke-dasharray="6 4"/>'
        )
        parts.append(f'<text x="{at + 4:.1f}" y="{top + 14}" fill="{MARK}">end of warm-up</text>')
    points = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in zip(minutes, mib, strict=True))
    parts.append(f'<polyline class="rss" points="{points}" fill="none" stroke="{LINE}" stroke-width="1.6"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _grid(x_axis: Axis, y_axis: Axis, x, y, box: tuple[float, float, float, float]) -> list[str]:
    """Grid lines, tick labels, the frame and the axis titles."""
    left, right, top, bottom = box
    out = []
    for tick in x_axis.ticks:
        at = x(tick)
        out.append(f'<line x1="{at:.1f}" y1="{top}" x2="{at:.1f}" y2="{bottom}" stroke="{GRID}"/>')
        out.append(f'<text x="{at:.1f}" y="{bottom + 18}" text-anchor="middle" fill="{INK}">{label(tick)}</text>')
    for tick in y_axis.ticks:
        at = y(tick)
        out.append(f'<line x1="{left}" y1="{at:.1f}" x2="{right}" y2="{at:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 8}" y="{at + 4:.1f}" text-anchor="end" fill="{INK}">{label(tick)}</text>')
    out.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="{INK}"/>'
    )
    out.append(f'<text x="{(left + right) / 2}" y="{HEIGHT - 14}" text-anchor="middle" fill="{INK}">minutes</text>')
    middle = (top + bottom) / 2
    out.append(
        f'<text x="18" y="{middle}" text-anchor="middle" fill="{INK}" '
        f'transform="rotate(-90 18 {middle})">RSS (MiB)</text>'
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a bench/soak.py --json report")
    parser.add_argument("--out", type=Path, help="default: the report's name with .svg")
    parser.add_argument("--title", help='what the soak was, e.g. "30-minute soak, SQLite"')
    args = parser.parse_args(argv)
    out = args.out or args.report.with_suffix(".svg")
    try:
        document = svg(json.loads(args.report.read_text()), args.title)
    except (OSError, ValueError) as exc:
        print(f"soak_plot: {exc}", file=sys.stderr)
        return 1
    out.write_text(document)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
