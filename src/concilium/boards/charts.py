"""Bar charts drawn on the server as SVG (no script, nothing fetched): the statistics page's
plots. Labels and titles are escaped; the chart scales to its container's width."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH = 640
HEIGHT = 240
_LEFT, _BOTTOM, _TOP = 40, 48, 16


def bar_chart(bars: Sequence[tuple[str, float]], title: str, css_id: str) -> Markup:
    """A vertical bar chart of ``bars`` (label, value); an empty chart says so in its title."""
    ceiling = max((value for _label, value in bars), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - _LEFT - 8, HEIGHT - _BOTTOM - _TOP
    step = plot_w / max(len(bars), 1)
    parts = [
        f'<svg id="{escape(css_id)}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - 8}" y2="{_TOP + plot_h}" '
        'stroke="currentColor" stroke-width="1"/>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 10}" text-anchor="end" font-size="11">'
        f"{escape(_number(ceiling))}</text>",
        f'<text x="{_LEFT - 6}" y="{_TOP + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    every = max(1, len(bars) // 12)  # at most about twelve labels under the axis
    for index, (label, value) in enumerate(bars):
        height = plot_h * value / ceiling
        x = _LEFT + index * step + step * 0.15
        width = max(step * 0.7, 1.0)
        parts.append(
            f'<rect x="{x:.1f}" y="{_TOP + plot_h - height:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" fill="#0b5cad"><title>{escape(label)}: '
            f"{escape(_number(value))}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle" '
                f'font-size="10">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and title above is escaped


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
