"""One figure theme and the report's figure helpers.

Every helper takes a tidy :class:`pandas.DataFrame` (one row per bar, point or observation, the
columns named by the arguments) and returns a :class:`matplotlib.figure.Figure`. Figures are made
with ``matplotlib.figure.Figure`` directly, not with ``pyplot``, so a notebook never shows a figure
twice: display it once, numbered and captioned, with :func:`study.report.present.figure`.

Design rules (the same in every helper)

* Colours: the Okabe–Ito palette (Okabe & Ito 2008, *Color Universal Design*), distinguishable with
  the common colour-vision deficiencies and in grey-scale print; reference lines in dark grey.
* Every axis carries a label with its unit: the label arguments are required keywords.
* No chartjunk: no top/right spines, a light grid behind the data, no figure titles (the caption
  says what, where and when), no 3-D, no shadows.
* Chinese labels render: the font list is DejaVu Sans for Latin glyphs with Noto Sans CJK SC
  (Debian ``fonts-noto-cjk``) as per-glyph fallback; only installed families are listed, so
  matplotlib never warns about a missing font. SVG output stores glyphs as paths, so a figure
  looks the same on a machine without those fonts.
* Uncertainty is drawn, not starred: bars and dots carry their confidence intervals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from study import fonts, i18n
from study.i18n import NP_, pgettext

# Okabe & Ito (2008): colour-blind-safe qualitative palette, in the order the cycle uses it.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
PALETTE = list(OKABE_ITO.values())
REFERENCE = "#4D4D4D"   # reference lines (targets, means, intervention dates)
MUTED = "#9A9A9A"       # context series (e.g. the control group, the baseline)
GRID = "#E6E6E6"

# The report's fonts (study.fonts: Noto Sans CJK SC first, DejaVu Sans filling the glyphs it lacks; matplotlib >= 3.6
# falls back per glyph along font.family). validate warns about characters neither can draw.
LATIN_FAMILIES = fonts.LATIN_FAMILIES
CJK_FAMILIES = fonts.CJK_FAMILIES

#: Default figure width in inches: the text width of an A4 page with 18 mm margins.
TEXT_WIDTH = 6.5


def _available_families() -> list[str]:
    return fonts.available_families() or ["sans-serif"]


def theme_rc() -> dict[str, Any]:
    """The theme as a dict of matplotlib rcParams (see :func:`use_theme`)."""
    return {
        "figure.figsize": (TEXT_WIDTH, 3.6),
        "figure.dpi": 100,
        "figure.facecolor": "white",
        "savefig.dpi": 200,
        "savefig.facecolor": "white",
        "savefig.bbox": "tight",
        "savefig.pad_inches": 0.04,
        # The explicit list, not the generic "sans-serif": matplotlib falls back per glyph only
        # across the families named in font.family (a generic name expands to its first match).
        "font.family": _available_families(),
        "font.sans-serif": _available_families() + ["sans-serif"],
        "font.size": 9.5,
        "axes.labelsize": 9.5,
        "axes.titlesize": 10,
        "axes.titlelocation": "left",
        "axes.titleweight": "bold",
        "xtick.labelsize": 8.5,
        "ytick.labelsize": 8.5,
        "legend.fontsize": 8.5,
        "legend.title_fontsize": 8.5,
        "legend.frameon": False,
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": "#333333",
        "axes.linewidth": 0.8,
        "axes.labelcolor": "#222222",
        "axes.grid": True,
        "axes.axisbelow": True,
        "grid.color": GRID,
        "grid.linewidth": 0.7,
        "xtick.color": "#333333",
        "ytick.color": "#333333",
        "xtick.major.size": 3,
        "ytick.major.size": 3,
        "axes.unicode_minus": True,
        "lines.linewidth": 1.8,
        "lines.markersize": 5,
        "errorbar.capsize": 3,
        "image.cmap": "cividis",
        "mathtext.fontset": "dejavusans",
        # Labels come from study.yml and the data: a "$" in a branch name is a dollar sign, never
        # the start of a formula (mathtext would also fail on "$\\frac{1}{0" and the like).
        "text.parse_math": False,
        "svg.fonttype": "path",
        "svg.hashsalt": "study-report",  # deterministic ids: identical figures give identical SVG
        "pdf.fonttype": 42,
    }


def use_theme() -> None:
    """Apply the report theme globally (for ad-hoc plots in JupyterLab; the helpers apply it anyway)."""
    mpl.rcParams.update(theme_rc())


@contextmanager
def themed():
    """Context in which figures are built with the theme, without changing global settings."""
    with mpl.rc_context(theme_rc()):
        yield


def new_figure(width: float = TEXT_WIDTH, height: float = 3.6, **subplot_kw) -> tuple[Figure, Any]:
    """A themed Figure (not registered with pyplot) and one Axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(**subplot_kw)
    return fig, ax


def _require(data: pd.DataFrame, *columns: str | None) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(map(repr, missing))} not in the data; it has {', '.join(map(str, data.columns))}")
    if data.empty:
        raise ValueError("nothing to plot: the data frame is empty")


def _colors(groups: Sequence, colors: Mapping | None = None) -> dict:
    colors = dict(colors or {})
    free = [c for c in PALETTE if c not in colors.values()]
    return {g: colors.get(g) or free[i % len(free)] for i, g in enumerate(groups)}


def _ordered_unique(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if c in set(values)]
    return list(dict.fromkeys(values))


def _num(fmt: str, v: float) -> str:
    """Format a value for an annotation, with a true minus sign."""
    text = fmt.format(v)
    return "\u2212" + text[1:] if text.startswith("-") else text


#: Longest label drawn in a figure (display width; CJK characters count double); longer ones end in "…".
MAX_LABEL = 60


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def label_text(value: Any, limit: int = MAX_LABEL) -> str:
    """A label from study.yml or the data as figure text: one line, at most ``limit`` wide.

    Always plain text - the theme turns mathtext off (``text.parse_math``), so ``$``, ``\\`` and
    ``<`` are drawn as typed; a very long label is cut with "…" so it cannot squeeze the axes away.
    """
    text = " ".join(str(value).split())
    if _width(text) <= limit:
        return text
    out, w = [], 0
    for ch in text:
        w += 2 if ord(ch) > 0x2E80 else 1
        if w > limit - 1:
            break
        out.append(ch)
    return "".join(out).rstrip() + "…"


def axis_title(value: Any, limit: int) -> str:
    """An axis title that fits ``limit`` (half-width characters; CJK count double) on as many lines as it needs: never
    cut ("总体满意度（0–100…" lost its unit). Lines break between Chinese characters or at spaces, never inside a
    bracketed unit ("（%）", "(0-100)") or a Latin word."""
    text = " ".join(str(value).split())
    if _width(text) <= limit:
        return text
    tokens = re.findall(r"[（(][^（）()]*[）)]|[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]|[^\s（(\u2e80-\u9fff]+|\s+", text)
    lines, cur = [], ""
    for tok in tokens:
        if cur and _width(cur + tok.rstrip()) > limit:
            lines.append(cur.rstrip())
            cur = tok.lstrip()
        else:
            cur += tok
    if cur.strip():
        lines.append(cur.rstrip())
    return "\n".join(lines)


def _wrap(text: str, width: int) -> str:
    """Wrap a tick label to ``width`` characters (CJK characters count double)."""
    import textwrap

    text = label_text(text)

    if _width(text) <= width:
        return text
    if " " in text:
        return "\n".join(textwrap.wrap(text, width, break_long_words=False))
    step = max(1, width // 2)
    return "\n".join(text[i:i + step] for i in range(0, len(text), step))


def _ref_line(ax, ref, label, horizontal_values: bool) -> None:
    if ref is None:
        return
    kw = dict(color=REFERENCE, linestyle=(0, (4, 3)), linewidth=1.1, zorder=1.5, label=label)
    (ax.axvline if horizontal_values else ax.axhline)(ref, **kw)


# ---------------------------------------------------------------------------------------------
# Bar chart with confidence intervals


def bar_ci(data: pd.DataFrame, category: str, value: str, *, value_label: str, category_label: str | None = None,
           lo: str | None = None, hi: str | None = None, group: str | None = None,
           ref: float | None = None, ref_label: str | None = None, horizontal: bool = True,
           annotate: bool = True, fmt: str = "{:.1f}", colors: Mapping | None = None,
           width: float = TEXT_WIDTH, height: float | None = None) -> Figure:
    """Bars with confidence-interval error bars and an optional reference line (target, average).

    ``data`` has one row per bar: ``category``, ``value`` and, for the whiskers, ``lo``/``hi``
    (the interval's bounds, not its half-width). With ``group`` the bars of each category are
    dodged (e.g. baseline vs current quarter). ``value_label`` must name the unit, e.g.
    ``"Score (0–100)"``. Horizontal bars (default) keep long category labels readable.
    """
    _require(data, category, value, lo, hi, group)
    if (lo is None) != (hi is None):
        raise ValueError("give both lo and hi (the interval bounds) or neither")
    cats = _ordered_unique(data[category])
    groups = _ordered_unique(data[group]) if group else [None]
    cmap = _colors(groups, colors)
    n_g = len(groups)
    band = 0.8
    bw = band / n_g
    if height is None:
        height = max(2.4, 0.42 * len(cats) * (1 + 0.35 * (n_g - 1)) + 0.9) if horizontal else 3.6
    with themed():
        fig, ax = new_figure(width, height)
        pos = np.arange(len(cats))
        for j, g in enumerate(groups):
            sub = data if g is None else data[data[group] == g]
            sub = sub.set_index(category).reindex(cats)
            offs = pos - band / 2 + bw * (j + 0.5)
            vals = sub[value].to_numpy(float)
            err = None
            if lo is not None:
                err = np.vstack([vals - sub[lo].to_numpy(float), sub[hi].to_numpy(float) - vals])
            kw = dict(color=cmap[g] if g is not None else OKABE_ITO["blue"], label=None if g is None else label_text(g),
                      zorder=2)
            ekw = dict(ecolor="#222222", elinewidth=1.0, capsize=2.5, capthick=1.0, fmt="none", zorder=3)
            if horizontal:
                ax.barh(offs, vals, height=bw * 0.88, **kw)
            else:
                ax.bar(offs, vals, width=bw * 0.88, **kw)
            if err is not None:
                # the interval drawn from its bounds: a percentile bootstrap interval need not contain the estimate
                a, b = sub[lo].to_numpy(float), sub[hi].to_numpy(float)
                mid, half = (a + b) / 2, np.abs(b - a) / 2
                if horizontal:
                    ax.errorbar(mid, offs, xerr=half, **ekw)
                else:
                    ax.errorbar(offs, mid, yerr=half, **ekw)
            if annotate:
                hi_end = vals if err is None else vals + np.nan_to_num(err[1])
                lo_end = vals if err is None else vals - np.nan_to_num(err[0])
                span = float(np.nanmax(np.abs(np.concatenate([hi_end, lo_end])))) or 1.0
                for o, v, e_hi, e_lo in zip(offs, vals, hi_end, lo_end):
                    if np.isfinite(v):
                        text = _num(fmt, v)
                        inside = abs(v) / span >= 0.12
                        if horizontal and inside:
                            # inside the bar, at its base: clear of whiskers and reference lines
                            ax.annotate(text, (0, o), xytext=(4 if v >= 0 else -4, 0), textcoords="offset points",
                                        va="center", ha="left" if v >= 0 else "right", fontsize=7.5,
                                        color="white", fontweight="bold")
                        elif horizontal:
                            ax.annotate(text, (e_hi if v >= 0 else e_lo, o), xytext=(4 if v >= 0 else -4, 0),
                                        textcoords="offset points", va="center", ha="left" if v >= 0 else "right",
                                        fontsize=7.5, color="#333333")
                        else:
                            ax.annotate(text, (o, e_hi if v >= 0 else e_lo), xytext=(0, 3 if v >= 0 else -3),
                                        textcoords="offset points", va="bottom" if v >= 0 else "top",
                                        ha="center", fontsize=7.5, color="#333333")
        _ref_line(ax, ref, ref_label, horizontal)
        if horizontal:
            ax.set_yticks(pos, [label_text(c) for c in cats])
            ax.invert_yaxis()
            ax.set_xlabel(value_label)
            if category_label:
                ax.set_ylabel(category_label)
            ax.grid(axis="y", visible=False)
            ax.margins(x=0.08)
        else:
            wrap = max(6, int(width * 72 / max(len(cats), 1) / 5.2))  # characters per line that fit a slot
            ax.set_xticks(pos, [_wrap(str(c), wrap) for c in cats])
            ax.set_ylabel(value_label)
            if category_label:
                ax.set_xlabel(category_label)
            ax.grid(axis="x", visible=False)
            ax.margins(y=0.08)
        if group or ref_label:
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=n_g + bool(ref_label), borderaxespad=0.3)
    return fig


# ---------------------------------------------------------------------------------------------
# Importance-performance analysis

#: Quadrant names of Martilla & James (1977), "Importance-performance analysis", J. Marketing 41(1).
IPA_QUADRANTS = {
    "high_importance_low_performance": NP_("figure", "Concentrate here"),
    "high_importance_high_performance": NP_("figure", "Keep up the good work"),
    "low_importance_low_performance": NP_("figure", "Low priority"),
    "low_importance_high_performance": NP_("figure", "Possible overkill"),
}
#: Series names that the analysis layer stores in English (legends), translated where drawn.
LEGEND_WORDS = [NP_("figure", "Pilot branches"), NP_("figure", "Control branches")]


def _place_labels(fig, ax, xs, ys, labels, fontsize=8) -> None:
    """Greedy label placement: for each point try 8 positions, take the one overlapping least."""
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    placed = []  # bboxes in display coords
    pts = ax.transData.transform(np.column_stack([xs, ys]))
    point_boxes = [mpl.transforms.Bbox.from_extents(px - 4, py - 4, px + 4, py + 4) for px, py in pts]
    axbox = ax.get_window_extent(renderer)
    offsets = [(6, 4, "left", "bottom"), (6, -4, "left", "top"), (-6, 4, "right", "bottom"),
               (-6, -4, "right", "top"), (0, 7, "center", "bottom"), (0, -7, "center", "top"),
               (8, 0, "left", "center"), (-8, 0, "right", "center")]
    for x, y, text in zip(xs, ys, labels):
        text = label_text(text, 40)
        best, best_cost = None, None
        for dx, dy, ha, va in offsets:
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            fontsize=fontsize, color="#222222", zorder=4)
            bb = t.get_window_extent(renderer)
            cost = sum(_overlap(bb, o) for o in placed) + sum(_overlap(bb, o) for o in point_boxes)
            outside = max(0, axbox.x0 - bb.x0) + max(0, bb.x1 - axbox.x1) + max(0, axbox.y0 - bb.y0) + max(0, bb.y1 - axbox.y1)
            cost += outside * bb.height * 4
            if best_cost is None or cost < best_cost:
                if best is not None:
                    best.remove()
                best, best_cost = t, cost
            else:
                t.remove()
            if best_cost == 0:
                break
        placed.append(best.get_window_extent(renderer))


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def ipa_scatter(data: pd.DataFrame, importance: str, performance: str, label: str, *,
                importance_label: str, performance_label: str, x_cut: float | None = None,
                y_cut: float | None = None, quadrant_names: Mapping[str, str] | None = None,
                highlight: Sequence | None = None, width: float = TEXT_WIDTH, height: float = 4.6) -> Figure:
    """Importance–performance map (Martilla & James 1977) with quadrant lines and point labels.

    Performance on the x axis, importance on the y axis; the cross-hairs are at the means unless
    ``x_cut``/``y_cut`` are given (e.g. the scale midpoint). ``highlight``: labels drawn in
    vermillion (e.g. the dimensions to act on first). Quadrant names follow Martilla & James.
    """
    _require(data, importance, performance, label)
    names = {**{k: i18n.tr(v, "figure") for k, v in IPA_QUADRANTS.items()}, **(quadrant_names or {})}
    x = data[performance].to_numpy(float)
    y = data[importance].to_numpy(float)
    xc = float(np.nanmean(x)) if x_cut is None else float(x_cut)
    yc = float(np.nanmean(y)) if y_cut is None else float(y_cut)
    hl = set(highlight or [])
    with themed():
        fig, ax = new_figure(width, height)
        colors = [OKABE_ITO["vermillion"] if lab in hl else OKABE_ITO["blue"] for lab in data[label]]
        ax.scatter(x, y, s=34, c=colors, zorder=3, edgecolors="white", linewidths=0.6)
        pad_x = (np.nanmax(x) - np.nanmin(x)) * 0.18 or 1
        pad_y = (np.nanmax(y) - np.nanmin(y)) * 0.18 or 0.1
        ax.set_xlim(min(np.nanmin(x), xc) - pad_x, max(np.nanmax(x), xc) + pad_x)
        ax.set_ylim(min(np.nanmin(y), yc) - pad_y, max(np.nanmax(y), yc) + pad_y)
        ax.axvline(xc, color=REFERENCE, lw=0.9, ls=(0, (4, 3)), zorder=1.5)
        ax.axhline(yc, color=REFERENCE, lw=0.9, ls=(0, (4, 3)), zorder=1.5)
        ax.grid(False)
        qkw = dict(fontsize=8, color="#6B6B6B", style="italic", transform=ax.transAxes)
        ax.text(0.01, 0.99, names["high_importance_low_performance"], ha="left", va="top", **qkw)
        ax.text(0.99, 0.99, names["high_importance_high_performance"], ha="right", va="top", **qkw)
        ax.text(0.01, 0.01, names["low_importance_low_performance"], ha="left", va="bottom", **qkw)
        ax.text(0.99, 0.01, names["low_importance_high_performance"], ha="right", va="bottom", **qkw)
        ax.set_xlabel(performance_label)
        ax.set_ylabel(importance_label)
        _place_labels(fig, ax, x, y, [str(v) for v in data[label]])
    return fig


# ---------------------------------------------------------------------------------------------
# Radar chart


def radar(data: pd.DataFrame, category: str, value: str, *, value_label: str, group: str | None = None,
          vmin: float | None = None, vmax: float | None = None, colors: Mapping | None = None,
          width: float = TEXT_WIDTH, height: float = 4.6) -> Figure:
    """Radar (spider) chart of one or more profiles over the same categories.

    ``data``: one row per (group, category). ``value_label`` names the radial unit and is shown
    under the chart. Use sparingly: a dot plot is easier to read exactly; a radar shows the shape
    of a profile (e.g. our bank vs competitors over the benchmark metrics, normalised 0–100).
    """
    _require(data, category, value, group)
    cats = _ordered_unique(data[category])
    if len(cats) < 3:
        raise ValueError(f"a radar chart needs at least 3 categories, got {len(cats)}; use bar_ci instead")
    groups = _ordered_unique(data[group]) if group else [None]
    cmap = _colors(groups, colors)
    angles = np.linspace(0, 2 * np.pi, len(cats), endpoint=False)
    with themed():
        fig, ax = new_figure(width, height, projection="polar")
        ax.set_theta_offset(np.pi / 2)
        ax.set_theta_direction(-1)
        for g in groups:
            sub = data if g is None else data[data[group] == g]
            vals = sub.set_index(category)[value].reindex(cats).to_numpy(float)
            a = np.append(angles, angles[0])
            v = np.append(vals, vals[0])
            c = cmap[g] if g is not None else OKABE_ITO["blue"]
            ax.plot(a, v, color=c, lw=1.6, label=None if g is None else label_text(g), zorder=3)
            ax.fill(a, v, color=c, alpha=0.10, zorder=2)
            ax.scatter(angles, vals, color=c, s=12, zorder=4)
        ax.set_xticks(angles, [_wrap(str(c), 18) for c in cats])
        # category labels outside the circle, aligned away from it (a label centred on a side spoke lay across the
        # data that reached the outer ring)
        for angle, tick in zip(angles, ax.get_xticklabels()):
            x = np.sin(angle)   # the theta offset (pi/2) and clockwise direction put spoke 0 at the top
            tick.set_horizontalalignment("left" if x > 0.15 else "right" if x < -0.15 else "center")
        lo = vmin if vmin is not None else min(0.0, float(np.nanmin(data[value])))
        hi = vmax if vmax is not None else float(np.nanmax(data[value])) * 1.05
        ax.set_ylim(lo, hi)
        ax.tick_params(axis="y", labelsize=7, colors="#6B6B6B")
        ax.tick_params(axis="x", pad=8)
        # the ring values between the first two spokes, on a white ground, where no polygon's corner lies
        ax.set_rlabel_position(float(np.degrees((angles[0] + angles[1]) / 2)))
        for t in ax.get_yticklabels():
            t.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85})
            t.set_zorder(5)
        ax.spines["polar"].set_color("#BBBBBB")
        ax.grid(color=GRID, lw=0.7)
        ax.set_xlabel(value_label, labelpad=14)
        if group:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


# ---------------------------------------------------------------------------------------------
# Dot-and-whisker (estimate with CI per metric), e.g. before/after


def dot_whisker(data: pd.DataFrame, metric: str, estimate: str, lo: str, hi: str, *, estimate_label: str | None = None,
                group: str | None = None, unit: str | None = None, ref: float | None = None,
                ref_label: str | None = None, colors: Mapping | None = None, width: float = TEXT_WIDTH,
                height: float | None = None, fmt: str | None = None) -> Figure:
    """Estimates with confidence intervals, one row per metric, optionally one dot per group.

    Two layouts:

    * ``unit=None``: all metrics on one axis labelled ``estimate_label`` (for comparable
      estimates such as standardised effect sizes or differences in the same unit), with an
      optional reference line ``ref`` (e.g. 0 = no change).
    * ``unit="unit"`` (a column): small multiples, one panel per metric with its own x axis
      labelled by that metric's unit, so before/after means in different units are never forced
      onto one scale.

    ``group`` (e.g. period: baseline / current, or pilot / control) dodges the dots vertically.
    """
    _require(data, metric, estimate, lo, hi, group, unit)
    if unit is None and not estimate_label:
        raise ValueError("give estimate_label (with the unit), or a unit column for per-metric axes")
    metrics = _ordered_unique(data[metric])
    groups = _ordered_unique(data[group]) if group else [None]
    cmap = _colors(groups, colors)
    n_g = len(groups)
    offs = (np.arange(n_g) - (n_g - 1) / 2) * (0.5 / max(n_g, 1)) if n_g > 1 else np.zeros(1)

    def draw(ax, sub, ypos):
        for j, g in enumerate(groups):
            s = sub if g is None else sub[sub[group] == g]
            if s.empty:
                continue
            present = set(s[metric])
            s = s.set_index(metric).reindex([m for m in metrics if m in present])
            yy = np.array([ypos[m] for m in s.index]) + offs[j]
            est = s[estimate].to_numpy(float)
            c = cmap[g] if g is not None else OKABE_ITO["blue"]
            a, b = s[lo].to_numpy(float), s[hi].to_numpy(float)
            ax.errorbar((a + b) / 2, yy, xerr=np.abs(b - a) / 2, fmt="none", ecolor=c, elinewidth=1.6, capsize=0, zorder=3)
            ax.plot(est, yy, "o", color=c, markersize=5.5, markeredgecolor="white", markeredgewidth=0.6,
                    label=None if g is None else label_text(g), zorder=4)
            if fmt:
                for e, y in zip(est, yy):
                    ax.annotate(_num(fmt, e), (e, y), xytext=(0, 5), textcoords="offset points", ha="center",
                                va="bottom", fontsize=7, color="#333333")

    with themed():
        if unit is None:
            if height is None:
                height = max(2.0, 0.45 * len(metrics) * (1 + 0.3 * (n_g - 1)) + 0.9)
            fig, ax = new_figure(width, height)
            ypos = {m: i for i, m in enumerate(metrics)}
            draw(ax, data, ypos)
            _ref_line(ax, ref, ref_label, True)
            ax.set_yticks(range(len(metrics)), [label_text(m) for m in metrics])
            ax.set_ylim(len(metrics) - 0.5, -0.5)
            ax.grid(axis="y", visible=False)
            ax.set_xlabel(estimate_label)
            handles_ax = ax
        else:
            if height is None:
                height = max(2.0, (0.62 + 0.12 * (n_g - 1)) * len(metrics) + 0.8)
            fig = Figure(figsize=(width, height), layout="constrained")
            FigureCanvasAgg(fig)
            axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
            for ax, m in zip(axes, metrics):
                sub = data[data[metric] == m]
                draw(ax, sub, {m: 0})
                ax.set_yticks([0], [label_text(m)])
                ax.set_ylim(0.6, -0.6)
                ax.grid(axis="y", visible=False)
                units = sub[unit].dropna().unique()
                ax.set_xlabel(str(units[0]) if len(units) else (estimate_label or ""), fontsize=8, labelpad=1)
                ax.tick_params(axis="x", labelsize=7.5)
                if ref is not None:
                    _ref_line(ax, ref, ref_label, True)
                ax.margins(x=0.15)
            handles_ax = axes[0]
        if group or ref_label:
            handles, labels = handles_ax.get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside upper center", ncols=len(labels))
    return fig


# ---------------------------------------------------------------------------------------------
# Interrupted time series


def _date_tick_zh(x: float, pos: int | None = None) -> str:
    """A date tick in Chinese: "4月", with the year at January and at the first tick ("2025年1月")."""
    d = mpl.dates.num2date(x)
    if d.day != 1:
        return f"{d.month}月{d.day}日"
    return f"{d.year}年{d.month}月" if d.month == 1 or pos == 0 else f"{d.month}月"


def its_plot(data: pd.DataFrame, time: str, value: str, *, intervention, value_label: str, time_label: str,
             fitted: str | None = None, counterfactual: str | None = None, group: str | None = None,
             intervention_label: str = "Intervention", colors: Mapping | None = None,
             width: float = TEXT_WIDTH, height: float = 3.4) -> Figure:
    """Time series with the intervention date and the fitted pre/post segments (segmented regression).

    ``data``: one row per period (and group): ``time`` (dates or period numbers), observed
    ``value`` (drawn as dots), optional ``fitted`` values (drawn as lines, broken at the
    intervention so level and slope changes are visible) and ``counterfactual`` (the pre-period
    trend projected forward, dashed). ``group`` draws one series per group (e.g. pilot / control).
    """
    _require(data, time, value, fitted, counterfactual, group)
    groups = _ordered_unique(data[group]) if group else [None]
    cmap = _colors(groups, colors)
    t_int = pd.Timestamp(intervention) if pd.api.types.is_datetime64_any_dtype(data[time]) else intervention
    with themed():
        fig, ax = new_figure(width, height)
        for g in groups:
            sub = (data if g is None else data[data[group] == g]).sort_values(time)
            c = cmap[g] if g is not None else OKABE_ITO["blue"]
            name = None if g is None else label_text(i18n.tr_known(g, "figure"))
            ax.plot(sub[time], sub[value], "o", color=c, markersize=3.5, alpha=0.75, zorder=3,
                    label=name if name is not None else pgettext("figure", "Observed"))
            if fitted:
                pre = sub[sub[time] < t_int]
                post = sub[sub[time] >= t_int]
                for k, seg in enumerate((pre, post)):
                    if len(seg):
                        ax.plot(seg[time], seg[fitted], "-", color=c, lw=2.0, zorder=4,
                                label=pgettext("figure", "Fitted segments") if (name is None and k == 0) else None)
            if counterfactual:
                post = sub[sub[time] >= t_int]
                ax.plot(post[time], post[counterfactual], color=c, lw=1.3, ls=(0, (3, 2)), zorder=2,
                        label=(pgettext("figure", "{}: projected without intervention").format(name) if name
                               else pgettext("figure", "projected without intervention")))
        ax.axvline(t_int, color=REFERENCE, lw=1.1, ls=(0, (4, 3)), zorder=1.5)
        ax.annotate(intervention_label, (t_int, 1.0), xycoords=("data", "axes fraction"), xytext=(4, -2),
                    textcoords="offset points", ha="left", va="top", fontsize=8, color=REFERENCE)
        ax.set_xlabel(time_label)
        ax.set_ylabel(value_label)
        if pd.api.types.is_datetime64_any_dtype(data[time]):
            loc = mpl.dates.AutoDateLocator(maxticks=8)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(mpl.dates.ConciseDateFormatter(loc) if i18n.language() == "en" else
                                         mpl.ticker.FuncFormatter(_date_tick_zh))
        fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncols=2)
    return fig


# ---------------------------------------------------------------------------------------------
# Process times vs standard minutes


def process_times(data: pd.DataFrame, category: str, minutes: str, *, value_label: str,
                  category_label: str | None = None, standard: Mapping | pd.Series | None = None,
                  kind: str = "box", whis: tuple[float, float] = (5, 95), order: Sequence | None = None,
                  max_points: int = 20_000, seed: int = 0, width: float = TEXT_WIDTH,
                  height: float | None = None) -> Figure:
    """Distribution of process times per category (box or violin) with the standard minutes marked.

    Boxes show the quartiles and median; whiskers the ``whis`` percentiles (default 5th–95th);
    points beyond them are not drawn (with many tickets they would only be ink). Violins show a
    kernel density on at most ``max_points`` tickets per category (a seeded random subsample),
    with the median as a white dot. ``standard``: category -> standard minutes, drawn as a
    vermillion diamond, so "over standard" reads at a glance.
    """
    _require(data, category, minutes)
    if kind not in ("box", "violin"):
        raise ValueError(f"kind must be 'box' or 'violin', not {kind!r}")
    cats = list(order) if order is not None else _ordered_unique(data[category])
    rng = np.random.default_rng(seed)
    samples = []
    for c in cats:
        v = data.loc[data[category] == c, minutes].dropna().to_numpy(float)
        if kind == "violin" and len(v) > max_points:
            v = rng.choice(v, max_points, replace=False)
        samples.append(v)
    if height is None:
        height = max(2.2, 0.5 * len(cats) + 0.9)
    std = dict(standard) if standard is not None else {}
    pos = np.arange(len(cats))
    with themed():
        fig, ax = new_figure(width, height)
        nonempty = [i for i, s in enumerate(samples) if len(s)]
        if kind == "box":
            ax.boxplot([samples[i] for i in nonempty], positions=pos[nonempty], orientation="horizontal",
                       whis=whis, showfliers=False, widths=0.55, patch_artist=True,
                       boxprops=dict(facecolor="#CFE3F1", edgecolor=OKABE_ITO["blue"], lw=1.0),
                       medianprops=dict(color=OKABE_ITO["blue"], lw=1.8),
                       whiskerprops=dict(color=OKABE_ITO["blue"], lw=1.0),
                       capprops=dict(color=OKABE_ITO["blue"], lw=1.0))
        else:
            parts = ax.violinplot([samples[i] for i in nonempty], positions=pos[nonempty], orientation="horizontal",
                                  widths=0.75, showextrema=False)
            for b in parts["bodies"]:
                b.set_facecolor("#CFE3F1")
                b.set_edgecolor(OKABE_ITO["blue"])
                b.set_alpha(1)
                b.set_linewidth(0.8)
            med = [np.median(samples[i]) for i in nonempty]
            ax.scatter(med, pos[nonempty], color="white", edgecolors=OKABE_ITO["blue"], s=22, zorder=3,
                       label=pgettext("figure", "Median"))
        if std:
            sp = [(i, std[c]) for i, c in enumerate(cats) if c in std]
            ax.scatter([v for _, v in sp], [i for i, _ in sp], marker="D", s=30, color=OKABE_ITO["vermillion"],
                       zorder=4, label=pgettext("figure", "Standard"), edgecolors="white", linewidths=0.5)
        ax.set_yticks(pos, [label_text(c) for c in cats])
        ax.set_ylim(len(cats) - 0.5, -0.5)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(value_label)
        if category_label:
            ax.set_ylabel(category_label)
        ax.set_xlim(left=0)
        if std or kind == "violin":
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2)
    return fig


def profile(data: pd.DataFrame, category: str, value: str, *, value_label: str, group: str | None = None,
            vmin: float | None = None, vmax: float | None = None, colors: Mapping | None = None) -> Figure:
    """Profiles of groups over categories: a radar chart from 3 categories on, grouped bars below
    (a radar of one or two spokes has no shape to read)."""
    _require(data, category, value, group)
    if len(_ordered_unique(data[category])) >= 3:
        return radar(data, category, value, value_label=value_label, group=group, vmin=vmin, vmax=vmax, colors=colors)
    return bar_ci(data, category, value, value_label=value_label, group=group, colors=colors)


# ---------------------------------------------------------------------------------------------
# Load over the week (7 x 24)


def heatmap(data: pd.DataFrame, row: str, col: str, value: str, *, value_label: str, row_label: str, col_label: str,
            row_names: Mapping | None = None, width: float = TEXT_WIDTH, height: float = 2.9) -> Figure:
    """A grid of cells coloured by ``value`` (e.g. requests per day by weekday x hour: the 7x24 load).

    ``data`` has one row per cell (``row``, ``col``, ``value``); rows and columns appear in sorted order,
    ``row_names`` maps row keys to the labels shown (e.g. 1 -> "Mon"). One sequential colour scale (viridis:
    perceptually uniform, readable in grey-scale and with colour-vision deficiencies) with its colour bar
    labelled ``value_label``; missing cells stay blank.
    """
    _require(data, row, col, value)
    grid = data.pivot_table(index=row, columns=col, values=value, aggfunc="sum", dropna=False).sort_index().sort_index(axis=1)
    with themed():
        fig, ax = new_figure(width, height)
        im = ax.imshow(grid.to_numpy(float), aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(grid.index)), [label_text((row_names or {}).get(r, r)) for r in grid.index])
        step = 2 if len(grid.columns) > 12 else 1
        ax.set_xticks(range(0, len(grid.columns), step), [str(c) for c in grid.columns[::step]])
        ax.set_xlabel(col_label)
        ax.set_ylabel(row_label)
        ax.grid(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        bar.set_label(value_label)
        bar.outline.set_visible(False)
    return fig
