"""Satisfaction scores: dimension scores, CSAT, NPS, the Service Quality Index, breakdowns.

No file I/O here: functions take DataFrames / Series and return DataFrames / Series.

Conventions
-----------
- Dimension score of a respondent: the mean of the dimension's items after reverse-keyed items are
  recoded ``min + max − x``; on the 0-100 scale ``(mean − min) / (max − min) × 100`` (the seed
  report's convention, :data:`SCORE_CONVENTION`; a 1-5 mean of 4 is 75, not 80).
- CSAT: the top-2-box share (4 or 5 on 1-5) with a Wilson (1927) score interval, and the 0-100
  mean with a t interval.
- NPS (Reichheld 2003): % promoters (9-10) − % detractors (0-6) on −100…100; Wald standard error
  ``√([p + d − (p − d)²] / n)``; adjusted Wald (Rocks 2016, *The American Statistician* 70(4),
  365-372): add 3/4 to the promoter and detractor counts and 3 to n before the Wald interval.
- SQI (seed report): ``Σ w_i · (x_i − min_i) / (max_i − min_i)``, reversed ``(max_i − x_i) / …``
  when lower is better, values outside [min, max] clipped to the range and flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "SCORE_CONVENTION", "to_0_100", "dimension_scores", "wilson_ci", "csat", "nps", "sqi", "sqi_spec",
    "sqi_indicators", "study_sqi", "breakdown",
]

SCORE_CONVENTION = ("Scores on 0-100 are (mean − scale minimum) / (scale maximum − scale minimum) × 100 "
                    "of the 1-5 item means, reverse-keyed items recoded (the seed report's convention).")


def _series(x, name: str) -> pd.Series:
    if isinstance(x, pd.DataFrame):
        raise ValueError(f"{name}: expected one column (a Series), got a DataFrame with columns {list(x.columns)}")
    s = pd.Series(x) if not isinstance(x, pd.Series) else x
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        conv = pd.to_numeric(s, errors="coerce")
        if conv.notna().sum() < s.notna().sum():
            raise ValueError(f"{name}: holds non-numeric values; expected numbers")
        s = conv
    return s.astype("float64")


def to_0_100(x, lo: float, hi: float):
    """``(x − lo) / (hi − lo) × 100``."""
    if not lo < hi:
        raise ValueError(f"scale minimum ({lo}) must be smaller than maximum ({hi})")
    return (x - lo) / (hi - lo) * 100.0


# ---------------------------------------------------------------------------------------------
def dimension_scores(data: pd.DataFrame, study=None, *, scales: Mapping[str, Sequence[str]] | None = None,
                     scale_range: tuple[float, float] | None = None, reverse: Sequence[str] | None = None,
                     min_share: float = 1.0) -> pd.DataFrame:
    """Per-respondent dimension scores: ``<dim>`` (item mean on the response scale) and
    ``<dim>_0_100`` (``(mean − min)/(max − min) × 100``), indexed like ``data``.

    Give either ``study`` (a :class:`study.data.config.Study`: its scales, scale range and reverse-keyed
    items) or ``scales`` + ``scale_range`` (+ ``reverse``). A respondent gets a score when at least
    ``min_share`` of the dimension's items are answered (default 1.0: all, listwise per scale),
    otherwise NaN. The frame's ``attrs["convention"]`` states the 0-100 convention.
    """
    if study is not None:
        scales = scales or study.scales
        if scale_range is None:
            scale_range = (study.questionnaire.scale.min, study.questionnaire.scale.max)
        reverse = study.reverse_items if reverse is None else reverse
    if not scales or scale_range is None:
        raise ValueError("dimension_scores: pass study=..., or scales={dim: [items]} and scale_range=(min, max)")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1], got {min_share}")
    lo, hi = scale_range
    items = [it for its in scales.values() for it in its]
    missing = [c for c in items if c not in data.columns]
    if missing:
        raise ValueError(f"dimension_scores: item column(s) {missing} are not in the data")
    x = data[items].apply(pd.to_numeric, errors="coerce").astype("float64")
    out_of_range = ((x < lo) | (x > hi)).sum()
    if out_of_range.any():
        bad = out_of_range[out_of_range > 0]
        raise ValueError(f"dimension_scores: values outside [{lo:g}, {hi:g}] in {dict(bad)}; validate the data first")
    rev = [r for r in (reverse or []) if r in x.columns]
    x[rev] = lo + hi - x[rev]
    out = {}
    for dim, its in scales.items():
        sub = x[list(its)]
        m = sub.mean(axis=1)
        answered = sub.notna().sum(axis=1) / len(its)
        m[answered < min_share - 1e-12] = np.nan
        out[dim] = m
    res = pd.DataFrame(out, index=data.index)
    for dim in scales:
        res[f"{dim}_0_100"] = to_0_100(res[dim], lo, hi)
    res.attrs["convention"] = SCORE_CONVENTION
    return res


# ---------------------------------------------------------------------------------------------
def wilson_ci(k: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval for a proportion k/n (= R's prop.test(correct = FALSE))."""
    if n <= 0:
        return np.nan, np.nan
    z = stats.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def csat(overall, scale_min: float = 1, scale_max: float = 5, top: int = 2, level: float = 0.95) -> pd.Series:
    """Customer satisfaction from a 1-5 overall-satisfaction item.

    Returns n, top2 (share answering one of the ``top`` highest categories), top2_ci_low/high
    (Wilson), mean (response scale), mean_0_100 with mean_0_100_ci_low/high (t interval,
    ``x̄ ± t_{n−1} s/√n``), sd_0_100. Missing answers are excluded (n counts the answers).
    """
    s = _series(overall, "csat").dropna()
    if ((s < scale_min) | (s > scale_max)).any():
        raise ValueError(f"csat: values outside [{scale_min:g}, {scale_max:g}]; validate the data first")
    n = int(s.size)
    cut = scale_max - top + 1
    k = int((s >= cut).sum())
    lo, hi = wilson_ci(k, n, level)
    y = to_0_100(s, scale_min, scale_max)
    m = y.mean() if n else np.nan
    sd = y.std(ddof=1) if n > 1 else np.nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
    return pd.Series({"n": n, "top2": k / n if n else np.nan, "top2_ci_low": lo, "top2_ci_high": hi,
                      "mean": s.mean() if n else np.nan, "mean_0_100": m, "mean_0_100_ci_low": m - half,
                      "mean_0_100_ci_high": m + half, "sd_0_100": sd}, name="csat")


def nps_points(recommend_0_10: pd.Series) -> pd.Series:
    """Per respondent: +100 for a promoter (9-10), −100 for a detractor (0-6), 0 for a passive, NaN when
    unanswered; their mean is the NPS, so means, breakdowns and the DiD of it are in NPS points."""
    v = pd.Series(recommend_0_10, dtype="float64")
    return pd.Series(np.where(v >= 9, 100.0, np.where(v <= 6, -100.0, 0.0)), index=v.index).where(v.notna())


def nps(recommend_0_10, level: float = 0.95) -> pd.Series:
    """Net Promoter Score with Wald and adjusted-Wald (Rocks 2016) intervals, on −100…100.

    promoters = share of 9-10, detractors = share of 0-6 (shares in 0-1), passives the rest;
    ``nps = 100(p − d)``; ``se = 100 √([p + d − (p − d)²] / n)``; ``ci = nps ± z·se``.
    Adjusted Wald: ``p̃ = (n_p + 3/4)/(n + 3)``, ``d̃ = (n_d + 3/4)/(n + 3)``,
    ``100[(p̃ − d̃) ± z √((p̃ + d̃ − (p̃ − d̃)²)/(n + 3))]``, clipped to [−100, 100].
    Missing answers are excluded; values must be integers 0..10.
    """
    s = _series(recommend_0_10, "nps").dropna()
    if ((s < 0) | (s > 10)).any() or (s != np.round(s)).any():
        raise ValueError("nps: likelihood to recommend must be whole numbers 0..10")
    n = int(s.size)
    z = stats.norm.ppf(0.5 + level / 2)
    n_p, n_d = int((s >= 9).sum()), int((s <= 6).sum())
    if n == 0:
        return pd.Series({k: np.nan for k in ("nps", "promoters", "passives", "detractors", "n", "se", "ci_low",
                                              "ci_high", "adj_ci_low", "adj_ci_high")} | {"n": 0}, name="nps")
    p, d = n_p / n, n_d / n
    se = np.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    pa, da, na = (n_p + 0.75) / (n + 3), (n_d + 0.75) / (n + 3), n + 3
    sea = np.sqrt((pa + da - (pa - da) ** 2) / na)
    return pd.Series({
        "nps": 100 * (p - d), "promoters": p, "passives": 1 - p - d, "detractors": d, "n": n, "se": 100 * se,
        "ci_low": 100 * (p - d - z * se), "ci_high": 100 * (p - d + z * se),
        "adj_ci_low": max(-100.0, 100 * (pa - da - z * sea)), "adj_ci_high": min(100.0, 100 * (pa - da + z * sea)),
    }, name="nps")


# ---------------------------------------------------------------------------------------------
def sqi_spec(study) -> pd.DataFrame:
    """The study's SQI definition (study.yml ``sqi``) as the ``spec`` frame :func:`sqi` takes."""
    return pd.DataFrame([{"indicator": s.id, "label": s.label, "source": s.source, "weight": s.weight,
                          "direction": s.direction, "min": s.min, "max": s.max, "unit": s.unit} for s in study.sqi])


def sqi(indicators: pd.DataFrame, spec: pd.DataFrame) -> pd.DataFrame:
    """Service Quality Index: ``Σ_i w_i · norm_i`` with min-max normalisation on the historical range.

    ``indicators``: one row per unit (index = unit), one column per indicator. ``spec``: columns
    indicator, weight, direction ("higher" / "lower"), min, max. ``norm = (x − min)/(max − min)``, or
    ``(max − x)/(max − min)`` for lower-is-better, after clipping x to [min, max]. Returns, per unit:
    ``sqi`` (0-1; weights are used as given), ``<indicator>_normalised``, ``<indicator>_contribution``
    (weight × normalised), ``<indicator>_clipped`` (True when x was outside the range), ``clipped``
    (any indicator clipped) and ``missing`` (indicators without a value; sqi is NaN then).
    Seed example: waiting 5 min in [3, 10], weight 0.2, lower is better → 0.714, weighted 0.143.
    """
    need = {"indicator", "weight", "direction", "min", "max"}
    if not isinstance(spec, pd.DataFrame) or not need <= set(spec.columns):
        raise ValueError(f"sqi: spec must be a DataFrame with columns {sorted(need)}")
    if spec["indicator"].duplicated().any():
        raise ValueError(f"sqi: indicator(s) {spec.loc[spec['indicator'].duplicated(), 'indicator'].tolist()} appear twice in spec")
    bad_dir = set(spec["direction"]) - {"higher", "lower"}
    if bad_dir:
        raise ValueError(f"sqi: direction must be 'higher' or 'lower', got {sorted(bad_dir)}")
    if (spec["min"] >= spec["max"]).any():
        raise ValueError(f"sqi: min must be smaller than max for {spec.loc[spec['min'] >= spec['max'], 'indicator'].tolist()}")
    if (spec["weight"] < 0).any():
        raise ValueError("sqi: weights must be non-negative")
    absent = [i for i in spec["indicator"] if i not in indicators.columns]
    if absent:
        raise ValueError(f"sqi: indicator column(s) {absent} are missing from the indicators frame (columns: {list(indicators.columns)})")
    out = pd.DataFrame(index=indicators.index)
    total = pd.Series(0.0, index=indicators.index)
    any_clip = pd.Series(False, index=indicators.index)
    absent_value = {}
    for _, r in spec.iterrows():
        ind = r["indicator"]
        x = pd.to_numeric(indicators[ind], errors="coerce").astype("float64")
        clipped = (x < r["min"]) | (x > r["max"])
        xc = x.clip(r["min"], r["max"])
        norm = (xc - r["min"]) / (r["max"] - r["min"])
        if r["direction"] == "lower":
            norm = 1.0 - norm
        out[f"{ind}_normalised"] = norm
        out[f"{ind}_contribution"] = r["weight"] * norm
        out[f"{ind}_clipped"] = clipped
        total = total + r["weight"] * norm
        any_clip |= clipped
        absent_value[ind] = x.isna()
    out.insert(0, "sqi", total)
    out["clipped"] = any_clip
    na = pd.DataFrame(absent_value, index=indicators.index)
    out["missing"] = [",".join(c for c in na.columns if row[c]) for _, row in na.iterrows()]
    return out


def sqi_indicators(survey: pd.DataFrame | None, process_times: pd.DataFrame | None, study,
                   by: str | None = "branch_id") -> pd.DataFrame:
    """Values of the study's SQI indicators, overall (row ``"all"``) and per ``by`` group.

    Survey indicators: csat_mean_0_100, csat_top2, overall_satisfaction, nps, complaint_rate and any
    dimension id (mean 0-100 score). Process indicators: waiting_minutes, handling_minutes,
    cycle_minutes (means), first_pass_yield (share first_pass), within_service_level (share called
    within the study's waiting target). Only indicators in ``study.sqi`` are computed.
    """
    wanted = [s.id for s in study.sqi]
    sources = {s.id: s.source for s in study.sqi}
    q = study.questionnaire

    def survey_values(df: pd.DataFrame) -> dict:
        res = {}
        if df is None or df.empty:
            return res
        oc = q.outcomes
        sat = oc.overall_satisfaction
        if "csat_mean_0_100" in wanted or "csat_top2" in wanted or "overall_satisfaction" in wanted:
            c = csat(df[sat.column], sat.scale.min, sat.scale.max)
            res.update({"csat_mean_0_100": c["mean_0_100"], "csat_top2": c["top2"], "overall_satisfaction": c["mean"]})
        if "nps" in wanted:
            res["nps"] = nps(df[oc.recommend.column])["nps"]
        if "complaint_rate" in wanted and oc.complaint is not None:
            res["complaint_rate"] = pd.to_numeric(df[oc.complaint.column], errors="coerce").mean()
        dims = [w for w in wanted if w in study.dimension_ids]
        if dims:
            sc = dimension_scores(df, study)
            for d in dims:
                res[d] = sc[f"{d}_0_100"].mean()
        return res

    def process_values(df: pd.DataFrame) -> dict:
        res = {}
        if df is None or df.empty:
            return res
        for col in ("waiting_minutes", "handling_minutes", "cycle_minutes"):
            if col in df.columns:
                res[col] = pd.to_numeric(df[col], errors="coerce").mean()
        if "first_pass" in df.columns:
            res["first_pass_yield"] = df["first_pass"].astype("float64").mean()
        if "waiting_minutes" in df.columns:
            w = pd.to_numeric(df["waiting_minutes"], errors="coerce")
            res["within_service_level"] = (w[w.notna()] <= study.service_level.waiting_target_minutes).mean()
        return res

    units: dict[str, dict] = {"all": {**survey_values(survey), **process_values(process_times)}}
    if by is not None:
        keys = set()
        for df in (survey, process_times):
            if df is not None and by in df.columns:
                keys |= set(df[by].dropna().unique())
        for key in sorted(keys):
            sv = survey_values(survey[survey[by] == key]) if survey is not None and by in survey.columns else {}
            pv = process_values(process_times[process_times[by] == key]) if process_times is not None and by in process_times.columns else {}
            units[str(key)] = {**sv, **pv}
    frame = pd.DataFrame.from_dict(units, orient="index")
    for w in wanted:
        if w not in frame.columns:
            frame[w] = np.nan
    frame.index.name = "unit"
    frame = frame[wanted]
    frame.attrs["sources"] = sources
    return frame


def study_sqi(survey: pd.DataFrame | None, process_times: pd.DataFrame | None, study,
              by: str | None = "branch_id") -> pd.DataFrame:
    """The study's SQI from study.yml, overall (row "all") and per branch: indicator values + :func:`sqi`."""
    ind = sqi_indicators(survey, process_times, study, by=by)
    res = sqi(ind, sqi_spec(study))
    return pd.concat([ind, res], axis=1)


# ---------------------------------------------------------------------------------------------
def breakdown(data: pd.DataFrame, by: str | Sequence[str], value_columns: Sequence[str], min_cell: int = 10,
              stat: str = "mean", complementary: bool = True) -> pd.DataFrame:
    """Group ``value_columns`` by ``by`` (e.g. segment, channel, branch_id) with small-cell suppression.

    One row per group: the group key(s), ``n`` (rows in the group), one column per value (the
    ``stat``: "mean", "median" or "share" = mean of a 0/1 column), and ``suppressed``: True when
    n < ``min_cell`` (the study's ``min_cell_size``), in which case every value is NaN — the group is
    shown, its figures are not — or when :func:`complementary_suppression` must hide it as well so
    that a suppressed group cannot be recovered by subtracting the shown groups from the total.
    """
    by_cols = [by] if isinstance(by, str) else list(by)
    value_columns = list(value_columns)
    missing = [c for c in by_cols + value_columns if c not in data.columns]
    if missing:
        raise ValueError(f"breakdown: column(s) {missing} are not in the data")
    if stat not in ("mean", "median", "share"):
        raise ValueError(f"breakdown: stat must be 'mean', 'median' or 'share', got {stat!r}")
    if int(min_cell) < 1:
        raise ValueError(f"breakdown: min_cell must be at least 1, got {min_cell}")
    vals = data[value_columns].apply(pd.to_numeric, errors="coerce").astype("float64")
    frame = pd.concat([data[by_cols], vals], axis=1)
    g = frame.groupby(by_cols, observed=True, dropna=False, sort=True)
    agg = g[value_columns].median() if stat == "median" else g[value_columns].mean()
    out = agg.reset_index()
    out.insert(len(by_cols), "n", g.size().to_numpy())
    out["suppressed"] = out["n"] < int(min_cell)
    if complementary:
        out["suppressed"] = complementary_suppression(out["n"].to_numpy(), out["suppressed"].to_numpy(), int(min_cell))
    out.loc[out["suppressed"], value_columns] = np.nan
    out.attrs["min_cell"] = int(min_cell)
    return out


def complementary_suppression(n: np.ndarray, primary: np.ndarray, min_cell: int) -> np.ndarray:
    """Secondary suppression so that suppressed cells cannot be recovered from the total.

    The all-respondent figure is published elsewhere (the headline table), so total minus the shown
    groups gives the suppressed groups' pooled value. That pool is protected when it holds at least
    two groups and at least ``min_cell`` respondents: while it does not, the smallest shown group
    is suppressed too (the usual rule of complementary suppression for a one-way table; Hundepool
    et al. 2012, Statistical Disclosure Control, §5.2). With a single group in the table, the group
    is the total and nothing can be protected by suppression: it stays as primary suppression left it.
    """
    n = np.asarray(n)
    sup = np.asarray(primary, dtype=bool).copy()
    if not sup.any() or len(n) < 2:
        return sup
    while (sup.sum() < 2 or n[sup].sum() < min_cell) and not sup.all():
        shown = np.flatnonzero(~sup)
        sup[shown[np.argmin(n[shown])]] = True
    return sup
