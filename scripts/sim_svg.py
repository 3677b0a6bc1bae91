"""Hand-written SVG plots for the simulator (matplotlib is not installed here)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

W, H, PAD = 520, 320, 50


def _frame(title: str, xlabel: str, ylabel: str, xmax: float, ymax: float) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 20}" y2="{H - PAD}" stroke="black"/>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{PAD}" y2="30" stroke="black"/>',
             f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">{escape(xlabel)}</text>',
             f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" '
             f'text-anchor="middle">{escape(ylabel)}</text>']
    for i in range(5):
        x = PAD + i * (W - 20 - PAD) / 4
        y = H - PAD - i * (H - PAD - 30) / 4
        parts.append(f'<text x="{x:.0f}" y="{H - PAD + 14}" text-anchor="middle">'
                     f'{xmax * i / 4:.3g}</text>')
        parts.append(f'<text x="{PAD - 4}" y="{y + 4:.0f}" text-anchor="end">'
                     f'{ymax * i / 4:.3g}</text>')
    return parts


def _xy(x: float, y: float, xmax: float, ymax: float) -> tuple[float, float]:
    return (PAD + x / xmax * (W - 20 - PAD), H - PAD - y / ymax * (H - PAD - 30))


def scatter(path: Path, title: str, points: list[tuple[float, float]]) -> None:
    """Messages per listing version against edges within the radius, with the 2x line."""
    xmax = max([p[0] for p in points] + [1.0]) * 1.1
    ymax = max([p[1] for p in points] + [2 * xmax / 1.1]) * 1.05
    parts = _frame(title, "edges within the hop radius", "messages per listing version",
                   xmax, ymax)
    x0, y0 = _xy(0, 0, xmax, ymax)
    x1, y1 = _xy(xmax, min(2 * xmax, ymax), xmax, ymax)
    parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
                 f'stroke="red" stroke-dasharray="4"/>')
    parts.append(f'<text x="{x1 - 4:.0f}" y="{y1 + 14:.0f}" text-anchor="end" fill="red">'
                 f'goal: 2 × edges</text>')
    for x, y in points:
        cx, cy = _xy(x, y, xmax, ymax)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="steelblue" '
                     f'fill-opacity="0.6"/>')
    path.write_text("\n".join([*parts, "</svg>", ""]), encoding="utf-8")


def histogram(path: Path, title: str, values: list[float], bins: int = 20) -> None:
    """Distribution of reach times (seconds)."""
    top = max([*values, 1.0])
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int(value / top * bins))] += 1
    ymax = max([*counts, 1])
    parts = _frame(title, "seconds to reach every node within the radius", "listings",
                   top, ymax)
    width = (W - 20 - PAD) / bins
    for i, count in enumerate(counts):
        x, y = _xy(i * top / bins, count, top, ymax)
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width - 1:.1f}" '
                     f'height="{H - PAD - y:.1f}" fill="steelblue"/>')
    path.write_text("\n".join([*parts, "</svg>", ""]), encoding="utf-8")


def write_plots(directory: Path, result: dict[str, Any]) -> list[Path]:
    """Write this run's two plots, named after its parameters; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    name = (f"{result['topology']}-{result['nodes']}"
            + (f"-loss{result['loss']}" if result["loss"] else "")
            + ("-partition" if result["partition"] else ""))
    label = f"{result['topology']}, {result['nodes']} nodes"
    messages = directory / f"messages-{name}.svg"
    reach = directory / f"reach-{name}.svg"
    scatter(messages, f"Messages per listing version ({label})", result["_points"])
    histogram(reach, f"Reach time ({label})", result["_reach"])
    return [messages, reach]
