"""Service requests: contact centre, AI assistant and complaints -- out-of-core with DuckDB.

Every aggregate is a DuckDB query streaming over the processed request log (``service_requests.parquet``
of one or more quarters: a file, a list, a folder searched recursively, or a glob; a pandas DataFrame is
accepted for small in-memory use). Only aggregated tables come back to Python. DataFrames and dicts in,
results out: no prose, no formatting.

Definitions (per request; minutes):

* first-response time ``first_response_at - received_at``; resolution time ``resolved_at - received_at``
  (missing while there is no response / no resolution);
* **share answered within** a target of ``h`` hours: requests with a first response within ``h`` hours
  over *all* requests of the group (a request never answered counts as not answered in time);
* **AI-started** requests: ``handled_by = 'ai'`` (the AI assistant handled it to the end) or
  ``escalated`` (the AI started it and handed it to a human). **Containment** = AI-started requests
  resolved by the AI (``handled_by = 'ai'`` and ``resolved_at`` present) / AI-started;
  **handoff** = escalated / AI-started. The remainder (AI conversations neither resolved nor handed
  on) is reported as ``abandoned``. Both shares carry **Wilson** score intervals
  (Wilson 1927; R ``prop.test(x, n, correct = FALSE)$conf.int``), from statsmodels'
  ``proportion_confint(method="wilson")``;
* a **complaint** is a request with a ``complaint_grade``; it is resolved within its deadline when
  ``resolution time <= deadline_hours`` of its grade (unresolved complaints are not within);
* **complaints per million visits** ``= 10^6 x complaints / visits`` where visits are the quarter's kept
  queue tickets plus the digital sessions the study counts (``service_requests.visits``). With a handful
  of events the interval, not the point, decides a target: the exact Poisson interval of Garwood (1936),
  ``[chi2_{a/2}(2x) / 2, chi2_{1-a/2}(2x + 2) / 2] / visits`` (R ``poisson.test(x, T)$conf.int``), from
  statsmodels' ``confint_poisson(method="exact-c")``. A rate per visit does not depend on the length of
  the period it is counted over, so the per-million figure of a quarter is already the yearly rate the
  documents' target speaks of ("<= 1 per million visits per year"); the *annualised count*
  (``complaints_per_year``) scales the count and its interval by ``365.25 / days`` of the period;
* percentiles are exact, DuckDB's ``quantile_cont`` (= R ``quantile(type = 7)`` = numpy's "linear").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import duckdb
import numpy as np
import pandas as pd

from study.data.config import Study
from study.errors import StudyError
from study.i18n import NP_

QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95}
_DERIVED = {"first_response_minutes": ("received_at", "first_response_at"),
            "resolution_minutes": ("received_at", "resolved_at")}
_OPTIONAL = {"branch_id": "VARCHAR", "category": "VARCHAR", "complaint_grade": "VARCHAR",
             "resolved_first_contact": "BOOLEAN", "post_contact_rating": "DOUBLE", "escalated": "BOOLEAN"}
WEEKDAYS = tuple(range(1, 8))
UNDECIDED = NP_("cell", "not distinguishable")    # ISO: 1 = Monday ... 7 = Sunday


class RequestDataError(StudyError):
    """The request log cannot be analysed as asked (missing columns, no rows ...)."""


@dataclass
class RequestLog:
    """A DuckDB connection with a view ``requests`` over the processed request log (derived columns included)."""

    con: duckdb.DuckDBPyConnection
    view: str = "requests"
    owned: bool = True

    def sql(self, query: str):
        return self.con.sql(query)

    def df(self, query: str) -> pd.DataFrame:
        return self.con.sql(query).df()

    def close(self) -> None:
        if self.owned:
            self.con.close()


def open_requests(source, con: duckdb.DuckDBPyConnection | None = None, threads: int | None = None,
                  memory_limit: str | None = None, temp_directory: str | None = None) -> RequestLog:
    """Open a processed request log (Parquet path/list/folder/glob, DataFrame, or an open RequestLog)."""
    from study.stats.process import connect, log_relation

    if isinstance(source, RequestLog):
        return source
    owned = con is None
    con = con or connect(threads, memory_limit, temp_directory)
    base, _, cols = log_relation(con, source, "requests_input")
    for needed in ("channel", "received_at", "handled_by"):
        if needed not in cols:
            raise RequestDataError(f"the request log has no '{needed}' column; columns found: {cols}")
    extra = []
    for m, (a, b) in _DERIVED.items():
        if m not in cols:
            if b not in cols:
                extra.append(f"CAST(NULL AS DOUBLE) AS {m}")
            else:
                extra.append(f"date_diff('microsecond', {a}, {b}) / 60000000.0 AS {m}")
    for c, typ in _OPTIONAL.items():
        if c not in cols:
            extra.append(f"CAST({'FALSE' if c == 'escalated' else 'NULL'} AS {typ}) AS {c}")
    if "resolved_at" not in cols:
        extra.append("CAST(NULL AS TIMESTAMP) AS resolved_at")
    select = "*" + "".join(", " + e for e in extra)
    con.execute(f"CREATE OR REPLACE TEMP VIEW requests_base AS SELECT {select} FROM {base}")
    con.execute("""CREATE OR REPLACE TEMP VIEW requests AS SELECT *,
        (lower(handled_by) = 'ai' OR coalesce(escalated, FALSE)) AS ai_started,
        (complaint_grade IS NOT NULL AND complaint_grade <> '') AS is_complaint
        FROM requests_base""")
    return RequestLog(con, "requests", owned)


def _close(log: RequestLog, source) -> None:
    """Close a log this function opened (not one the caller passed in)."""
    if log is not source:
        log.close()


def _lit(values: Sequence[str]) -> str:
    from study.stats.process import sql_list

    return sql_list(values)


# ---------------------------------------------------------------------------------------------
# Volumes


def volume_by_channel(source, study: Study | None = None) -> pd.DataFrame:
    """Requests per channel (study order first, then any other id seen): n, share, AI-started, complaints."""
    log = open_requests(source)
    try:
        df = log.df(f"""SELECT channel, count(*) AS n, sum(CAST(ai_started AS INTEGER)) AS ai_started,
                        sum(CAST(is_complaint AS INTEGER)) AS complaints FROM {log.view} GROUP BY channel""")
    finally:
        _close(log, source)
    df["n"] = df["n"].astype("int64")
    df[["ai_started", "complaints"]] = df[["ai_started", "complaints"]].fillna(0).astype("int64")
    total = int(df["n"].sum())
    df["share"] = df["n"] / total if total else np.nan
    return _order(df, "channel", [c.id for c in study.service_requests.channels] if study is not None and study.has_requests else [])


def _order(df: pd.DataFrame, key: str, ids: list[str]) -> pd.DataFrame:
    rank = {v: i for i, v in enumerate(ids)}
    df = df.assign(_o=df[key].map(lambda v: rank.get(v, len(rank))), _s=df[key].astype(str))
    return df.sort_values(["_o", "_s"]).drop(columns=["_o", "_s"]).reset_index(drop=True)


def load_heatmap(source) -> pd.DataFrame:
    """Requests received by ISO weekday (1 = Monday ... 7 = Sunday) x hour of day (0-23): all 168 cells,
    with ``n`` (count), ``days`` (how many such weekdays the log spans, from its first to its last date)
    and ``per_day`` (n / days, the average load of that hour on that weekday)."""
    log = open_requests(source)
    try:
        counts = log.df(f"""SELECT CAST(isodow(received_at) AS INTEGER) AS weekday, CAST(hour(received_at) AS INTEGER) AS hour,
                            count(*) AS n FROM {log.view} GROUP BY ALL""")
        first, last = log.sql(f"SELECT min(received_at)::DATE, max(received_at)::DATE FROM {log.view}").fetchall()[0]
    finally:
        _close(log, source)
    grid = pd.DataFrame([(w, h) for w in WEEKDAYS for h in range(24)], columns=["weekday", "hour"])
    out = grid.merge(counts, on=["weekday", "hour"], how="left")
    out["n"] = out["n"].fillna(0).astype("int64")
    if first is None:
        out["days"] = 0
    else:
        dates = pd.date_range(first, last)
        per = pd.Series(dates.isocalendar().day.to_numpy()).value_counts()
        out["days"] = out["weekday"].map(per).fillna(0).astype("int64")
    out["per_day"] = np.where(out["days"] > 0, out["n"] / out["days"].where(out["days"] > 0, 1), np.nan)
    return out


# ---------------------------------------------------------------------------------------------
# Response and resolution times


def response_times(source, study: Study, by: str | None = "channel", counts: dict | None = None) -> pd.DataFrame:
    """First-response and resolution time (minutes: mean, median, p90, p95), the share answered within
    each of the study's response targets and the share resolved at the first contact (of the requests where it
    is recorded, ``n_fcr_known``), per ``by`` (``channel``, ``handled_by``, ``branch_id``,
    ``category``; None: all requests) with a final ``(all)`` row when grouped. ``counts``: the value counts of
    the two durations (:func:`value_counts`, measure -> frame with ``by`` among its keys) when already made."""
    targets = [t.hours for t in study.service_requests.response_targets] if study.has_requests else [24.0]
    aggs = ["count(*) AS n", "count(first_response_minutes) AS n_responded",
            "count(resolution_minutes) AS n_resolved", "count(resolved_first_contact) AS n_fcr_known",
            "avg(CAST(resolved_first_contact AS DOUBLE)) AS first_contact_resolution"]
    for m, short in (("first_response_minutes", "first_response"), ("resolution_minutes", "resolution")):
        aggs += [f"avg({m}) AS {short}_mean", f"stddev_samp({m}) AS {short}_sd"]
    for h in targets:
        aggs.append(f"sum(CASE WHEN first_response_minutes <= {float(h) * 60!r} THEN 1 ELSE 0 END) AS within_{_h(h)}")
    # one scan: the groups and the total together (GROUPING SETS)
    sets = f"GROUPING SETS (({by}), ())" if by else "GROUPING SETS (())"
    key = f"CASE WHEN grouping({by}) = 1 THEN '(all)' ELSE CAST({by} AS VARCHAR) END AS grp, grouping({by}) AS _total" \
        if by else "'(all)' AS grp, 1 AS _total"
    log = open_requests(source)
    try:
        df = log.df(f"SELECT {key}, {', '.join(aggs)} FROM {log.view} GROUP BY {sets}")
        for m, short in (("first_response_minutes", "first_response"), ("resolution_minutes", "resolution")):
            vc = counts[m] if counts is not None else value_counts(log, m, (by,) if by else ())
            q = _quantiles(vc, by)
            for name in QUANTILES:
                df[f"{short}_{name}"] = [q.get((int(t), None if pd.isna(g) else g), {}).get(name, np.nan)
                                         for t, g in zip(df["_total"], df["grp"])]
    finally:
        _close(log, source)
    cols = ["grp", "_total", "n", "n_responded", "n_resolved", "n_fcr_known", "first_contact_resolution"]
    for short in ("first_response", "resolution"):
        cols += [f"{short}_mean", f"{short}_sd"] + [f"{short}_{q}" for q in QUANTILES]
    df = df[cols + [f"within_{_h(h)}" for h in targets]]
    df = df.drop(columns="_total")
    for h in targets:
        df[f"within_{_h(h)}"] = df[f"within_{_h(h)}"].fillna(0).astype("int64")
        df[f"share_within_{_h(h)}"] = df[f"within_{_h(h)}"] / df["n"]
    for c in ("n", "n_responded", "n_resolved", "n_fcr_known"):
        df[c] = df[c].astype("int64")
    df = df.rename(columns={"grp": by or "group"})
    ids = [c.id for c in study.service_requests.channels] if by == "channel" and study.has_requests else []
    head = df[df[by or "group"] != "(all)"] if by else df.iloc[0:0]
    ordered = _order(head, by, ids) if by else head
    return pd.concat([ordered, df[df[by or "group"] == "(all)"]], ignore_index=True)


def value_counts(source, measure: str, keys: Sequence[str] = ()) -> pd.DataFrame:
    """How often each value of ``measure`` occurs per combination of ``keys`` (columns: keys, v, c).

    One DuckDB hash aggregation: a log records whole seconds, so a quarter of 10 million requests has some
    hundred thousand distinct durations per group, not millions of values to sort. Quantiles of any grouping
    by a subset of ``keys`` follow from these counts (:func:`_quantiles`)."""
    log = open_requests(source)
    try:
        cols = "".join(f"{k}, " for k in keys)
        return log.sql(f"""SELECT {cols}{measure} AS v, count(*) AS c FROM {log.view} WHERE {measure} IS NOT NULL
                           GROUP BY ALL""").df()
    finally:
        _close(log, source)


def _quantiles(counts: pd.DataFrame, by: str | None) -> dict[tuple[int, object], dict[str, float]]:
    """Exact quantiles (:data:`QUANTILES`, R type 7) per ``by`` group (key (0, value); a missing value is None)
    and overall (key (1, '(all)')) from :func:`value_counts`, read off the cumulative counts
    (:func:`study.stats.process.quantiles_from_counts`), which gives exactly ``quantile_cont`` /
    ``numpy.quantile(method="linear")``."""
    from study.stats.process import quantiles_from_counts

    out: dict[tuple[int, object], dict[str, float]] = {}
    if counts.empty:
        return out
    probs = list(QUANTILES.values())
    total = counts.groupby("v", sort=True)["c"].sum()
    out[(1, "(all)")] = dict(zip(QUANTILES, (float(x) for x in quantiles_from_counts(total.index.to_numpy(float),
                                                                                       total.to_numpy(np.int64), probs))))
    if by:
        keyed = counts.assign(_g=counts[by].astype(object).where(counts[by].notna(), "\x00null"))
        per = keyed.groupby(["_g", "v"], sort=True)["c"].sum().reset_index()
        for g, sub in per.groupby("_g", sort=False):
            q = quantiles_from_counts(sub["v"].to_numpy(float), sub["c"].to_numpy(np.int64), probs)
            out[(0, None if g == "\x00null" else g)] = dict(zip(QUANTILES, (float(x) for x in q)))
    return out


def _h(hours: float) -> str:
    """Column suffix of a target in hours: 24 -> '24h', 0.5 -> '0.5h'."""
    return f"{hours:g}h"


# ---------------------------------------------------------------------------------------------
# Intervals and verdicts


def wilson(x: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """Share x/n with its Wilson score interval (= R ``prop.test(x, n, correct = FALSE)$conf.int``)."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = proportion_confint(int(x), int(n), alpha=1 - level, method="wilson")
    return x / n, float(lo), float(hi)


def poisson_rate(x: int, exposure: float, level: float = 0.95, per: float = 1e6) -> tuple[float, float, float]:
    """Events per ``per`` units of exposure with Garwood's exact interval (= R ``poisson.test(x, T)``)."""
    from statsmodels.stats.rates import confint_poisson

    if exposure <= 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = confint_poisson(int(x), float(exposure), method="exact-c", alpha=1 - level)
    return per * x / exposure, per * float(lo), per * float(hi)


def interval_verdict(low: float, high: float, operator: str, value: float) -> str:
    """'met' / 'not met' / 'not distinguishable' from an interval (the words of the toolkit's targets,
    :func:`study.stats.effects.target_attainment`): met when the whole interval is on the target's side, not met when
    the whole interval is on the other side, not distinguishable when it contains the target (or is missing)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return UNDECIDED
    if operator == "<=":
        return NP_("cell", "met") if high <= value else NP_("cell", "not met") if low > value else UNDECIDED
    if operator == ">=":
        return NP_("cell", "met") if low >= value else NP_("cell", "not met") if high < value else UNDECIDED
    raise ValueError(f"operator must be '<=' or '>=', not {operator!r}")


# ---------------------------------------------------------------------------------------------
# Complaints


def complaints_by_grade(source, study: Study, level: float = 0.95) -> pd.DataFrame:
    """Per complaint grade (study order; grades without complaints included) and ``(all)``: complaints,
    resolved, resolved within the grade's deadline (with a Wilson interval of the share), median and p90
    resolution hours."""
    grades = study.service_requests.complaint_grades if study.has_requests else []
    deadline = " ".join(f"WHEN '{g.id}' THEN {float(g.deadline_hours) * 60!r}" for g in grades)
    deadline_sql = f"CASE complaint_grade {deadline} ELSE NULL END" if grades else "NULL"
    log = open_requests(source)
    try:
        df = log.df(f"""SELECT complaint_grade AS grade, count(*) AS complaints, count(resolution_minutes) AS resolved,
            sum(CASE WHEN resolution_minutes <= {deadline_sql} THEN 1 ELSE 0 END) AS within_deadline,
            quantile_cont(resolution_minutes, 0.5) / 60 AS resolution_hours_median,
            quantile_cont(resolution_minutes, 0.9) / 60 AS resolution_hours_p90
            FROM {log.view} WHERE is_complaint GROUP BY grade""")
        total = log.df(f"""SELECT '(all)' AS grade, count(*) AS complaints, count(resolution_minutes) AS resolved,
            sum(CASE WHEN resolution_minutes <= {deadline_sql} THEN 1 ELSE 0 END) AS within_deadline,
            quantile_cont(resolution_minutes, 0.5) / 60 AS resolution_hours_median,
            quantile_cont(resolution_minutes, 0.9) / 60 AS resolution_hours_p90
            FROM {log.view} WHERE is_complaint""")
    finally:
        _close(log, source)
    ids = [g.id for g in grades]
    df = pd.DataFrame({"grade": ids}).merge(df, on="grade", how="outer") if ids else df
    df = pd.concat([_order(df, "grade", ids), total], ignore_index=True)
    for c in ("complaints", "resolved", "within_deadline"):
        df[c] = df[c].fillna(0).astype("int64")
    hours = {g.id: g.deadline_hours for g in grades}
    df["deadline_hours"] = df["grade"].map(hours).astype("float64")
    est = [wilson(x, n, level) for x, n in zip(df["within_deadline"], df["complaints"])]
    df["share_within_deadline"] = [e[0] for e in est]
    df["share_ci_low"] = [e[1] for e in est]
    df["share_ci_high"] = [e[2] for e in est]
    return df


def visits(study: Study, quarter: str, queue_tickets: int | None) -> dict:
    """The denominator of complaints per million visits for one quarter, with its parts.

    ``queue_tickets``: the quarter's kept queue tickets (None when the quarter has no process times).
    A part the study counts but the quarter does not supply is listed in ``missing``.
    """
    v = study.service_requests.visits
    parts, missing = {}, []
    if v.queue_tickets:
        if queue_tickets is None:
            missing.append("queue_tickets")
        else:
            parts["queue_tickets"] = int(queue_tickets)
    if v.digital_sessions:
        if quarter in v.digital_sessions:
            parts["digital_sessions"] = int(v.digital_sessions[quarter])
        else:
            missing.append("digital_sessions")
    return {"visits": sum(parts.values()), "parts": parts, "missing": missing}


def complaints_per_million(complaints: int, visit_count: int, days: int, level: float = 0.95,
                           target: float | None = None, operator: str = "<=") -> dict:
    """Complaints per million visits with Garwood's exact interval; the annualised count; and, with a
    ``target`` (per million visits), the verdict of the interval (:func:`interval_verdict`)."""
    rate, lo, hi = poisson_rate(complaints, visit_count, level)
    scale = 365.25 / days if days > 0 else np.nan
    _, clo, chi = poisson_rate(complaints, 1.0, level, per=1.0)
    out = {"complaints": int(complaints), "visits": int(visit_count), "days": int(days), "level": level,
           "per_million": rate, "ci_low": lo, "ci_high": hi,
           "complaints_per_year": complaints * scale, "per_year_ci_low": clo * scale, "per_year_ci_high": chi * scale}
    if target is not None:
        out.update(target=float(target), operator=operator, verdict=interval_verdict(lo, hi, operator, target))
    return out


# ---------------------------------------------------------------------------------------------
# AI assistant


def ai_rates(source, level: float = 0.95, by: str | None = None) -> pd.DataFrame:
    """AI containment and handoff with Wilson intervals (overall, or per ``by``, e.g. channel)."""
    log = open_requests(source)
    key = f"{by} AS grp" if by else "'(all)' AS grp"
    try:
        df = log.df(f"""SELECT {key}, count(*) AS ai_started,
            sum(CASE WHEN lower(handled_by) = 'ai' AND resolved_at IS NOT NULL THEN 1 ELSE 0 END) AS contained,
            sum(CASE WHEN coalesce(escalated, FALSE) THEN 1 ELSE 0 END) AS handed_off
            FROM {log.view} WHERE ai_started {"GROUP BY grp" if by else ""}""")
    finally:
        _close(log, source)
    df = df.rename(columns={"grp": by or "group"})
    for c in ("ai_started", "contained", "handed_off"):
        df[c] = df[c].fillna(0).astype("int64")
    df["abandoned"] = df["ai_started"] - df["contained"] - df["handed_off"]
    for what in ("contained", "handed_off"):
        name = "containment" if what == "contained" else "handoff"
        est = [wilson(x, n, level) for x, n in zip(df[what], df["ai_started"])]
        df[name] = [e[0] for e in est]
        df[f"{name}_ci_low"] = [e[1] for e in est]
        df[f"{name}_ci_high"] = [e[2] for e in est]
    return df[df["ai_started"] > 0].reset_index(drop=True)


def rating_counts(source, by: str = "handled_by", where: str | None = None) -> pd.DataFrame:
    """How often each post-contact rating was given, per ``by`` (long: group, rating, n)."""
    log = open_requests(source)
    try:
        cond = "post_contact_rating IS NOT NULL" + (f" AND ({where})" if where else "")
        return log.df(f"""SELECT {by} AS grp, post_contact_rating AS rating, count(*) AS n FROM {log.view}
                          WHERE {cond} GROUP BY ALL ORDER BY grp, rating""").rename(columns={"grp": by})
    finally:
        _close(log, source)


def _value_counts(counts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ratings (sorted) and how often each was given, from rows of ``rating``/``n``."""
    g = counts.groupby("rating", sort=True)["n"].sum()
    g = g[g > 0]
    return g.index.to_numpy(float), g.to_numpy(np.int64)


def _order_stat(x: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The k-th smallest values (0-based) of the sample ``x`` repeated ``n`` times."""
    return x[np.searchsorted(np.cumsum(n), k, side="right")]


def _percentile(x: np.ndarray, n: np.ndarray, q: float) -> float:
    """numpy's ``percentile(expanded, q)`` ("linear", = R type 7) from value counts."""
    h = (n.sum() - 1) * q / 100
    lo = math.floor(h)
    a, b = _order_stat(x, n, np.array([lo, min(lo + 1, n.sum() - 1)]))
    return float(a + (h - lo) * (b - a))


def _moments(x: np.ndarray, n: np.ndarray) -> dict:
    """n, mean, sample variance, biased skew (scipy ``skew(bias=True)``), share beyond 3 IQR from the quartiles
    and median of the sample ``x`` repeated ``n`` times (the inputs of :func:`study.stats.effects.compare`)."""
    total = int(n.sum())
    mean = float((x * n).sum() / total)
    d = x - mean
    m2 = float((d ** 2 * n).sum() / total)
    var = m2 * total / (total - 1)
    if total < 3 or m2 == 0:
        g1, out = 0.0, 0.0
    else:
        g1 = float((d ** 3 * n).sum() / total / m2 ** 1.5)
        q1, q3 = _percentile(x, n, 25), _percentile(x, n, 75)
        iqr = q3 - q1
        out = float(n[(x < q1 - 3 * iqr) | (x > q3 + 3 * iqr)].sum() / total) if iqr > 0 else 0.0
    return {"n": total, "mean": mean, "var": var, "g1": g1, "out": out, "median": _percentile(x, n, 50)}


def compare_counts(before: pd.DataFrame, after: pd.DataFrame, level: float = 0.95) -> pd.Series:
    """:func:`study.stats.effects.compare` (``kind="continuous"``, independent groups) of two samples given as counts per
    value (``rating``, ``n``), without expanding them: every statistic it reports is a function of the counts (the
    sufficient statistics of a sample on a short scale). Welch t and its interval from the means and variances (R
    ``t.test``), Hedges' g from the pooled variance (noncentral-t interval, as ``compare``), the Mann-Whitney U from
    mid-ranks per value with the tie-corrected normal approximation and continuity correction (R ``wilcox.test``;
    scipy's formula), the rank-biserial correlation from U, skew and outliers for the rule from weighted moments and
    type-7 quartiles. Equal to ``compare(expand(before), expand(after))`` (tested to 1e-9); written by hand because
    no library computes these from counts, and expanding 10 million ratings to rank them took seconds.

    Falls back to the expanded computation where the counts cannot stand in cheaply: both groups under 50 (R's exact
    Mann-Whitney p; the expansion is then tiny) or a group without variance (undefined statistics, ``compare``'s own
    notes)."""
    from scipy import stats

    from study.stats import effects as eff

    xb, nb = _value_counts(before)
    xa, na = _value_counts(after)
    if min(nb.sum(), na.sum()) < 2:
        raise ValueError(f"compare: need at least 2 values in each group (before {nb.sum()}, after {na.sum()})")
    if (nb.sum() < 50 and na.sum() < 50) or len(xb) < 2 or len(xa) < 2:
        return eff.compare(np.repeat(xb, nb), np.repeat(xa, na), kind="continuous", level=level)
    a, b = _moments(xa, na), _moments(xb, nb)
    out = dict.fromkeys(eff.FIELDS, np.nan)
    out.update(n_before=b["n"], n_after=a["n"], effect_size_name="", alt_test="", alt_effect_size_name="")
    small = min(a["n"], b["n"]) < 30
    rough = max(abs(a["g1"]), abs(b["g1"])) > 1 or max(a["out"], b["out"]) > 0.05
    rule = "C1" if not small else "C2" if rough else "C3"
    tt = eff.welch_from_stats(a["mean"], a["var"], a["n"], b["mean"], b["var"], b["n"], level)
    g, g_lo, g_hi = eff.hedges_g_from_stats(tt["estimate"], a["var"], a["n"], b["var"], b["n"], level)
    # Mann-Whitney U of `after` from mid-ranks per value, and the rank-biserial correlation
    values = np.union1d(xa, xb)
    ca = np.zeros(len(values), np.int64)
    cb = np.zeros(len(values), np.int64)
    ca[np.searchsorted(values, xa)] = na
    cb[np.searchsorted(values, xb)] = nb
    tie = ca + cb
    mid = np.cumsum(tie) - (tie - 1) / 2
    n1, n2 = a["n"], b["n"]
    u1 = float((mid * ca).sum() - n1 * (n1 + 1) / 2)
    u2 = n1 * n2 - u1
    nn = n1 + n2
    s = math.sqrt(n1 * n2 / 12 * ((nn + 1) - float((tie.astype(float) ** 3 - tie).sum()) / (nn * (nn - 1))))
    p_mw = float(min(max(2 * stats.norm.sf((max(u1, u2) - n1 * n2 / 2 - 0.5) / s), 0.0), 1.0))
    r, r_lo, r_hi = eff.rank_biserial_ci((u1 - u2) / (n1 * n2), n1, n2, level)
    tblock = {**tt, "effect_size": g, "effect_size_name": "Hedges' g", "effect_ci_low": g_lo, "effect_ci_high": g_hi}
    wblock = {"test": "mann_whitney", "statistic": u1, "df": np.nan, "p": p_mw, "effect_size": r,
              "effect_size_name": "rank-biserial r", "effect_ci_low": r_lo, "effect_ci_high": r_hi}
    head, alt = (wblock, tblock) if rule == "C2" else (tblock, wblock)
    out.update(head, rule=rule, before_value=b["mean"], after_value=a["mean"])
    notes = []
    if rule == "C2":
        out.update(estimate=a["median"] - b["median"], ci_low=np.nan, ci_high=np.nan)
        notes.append("estimate is the difference of the medians")
    out.update(eff._alt_fields(alt))
    notes.append(f"skew before {b['g1']:.2f} / after {a['g1']:.2f}; outliers before {b['out']:.1%} / after "
                 f"{a['out']:.1%}; SD ratio {math.sqrt(a['var']) / math.sqrt(b['var']):.2f}; Mann-Whitney: normal "
                 "approximation with continuity and tie correction")
    notes.insert(0, f"rule {rule}: {eff.RULES[rule]}")
    out["assumption_notes"] = "; ".join(notes)
    return pd.Series(out)


def rating_ai_vs_human(source, level: float = 0.95, where: str | None = None) -> pd.Series | None:
    """Post-contact rating of requests the AI handled to the end vs those a human handled, with the toolkit's
    test rules (:func:`study.stats.effects.compare`; ``before`` = human, ``after`` = AI, so the estimate is AI -
    human). The ratings come back from DuckDB as counts per value (a rating is on a short integer scale) and are
    compared as counts (:func:`compare_counts`), so neither the log nor the ratings are expanded. None when either group has fewer than 2 ratings."""
    counts = rating_counts(source, "lower(handled_by)", where).rename(columns={"lower(handled_by)": "handled_by"})
    ai = counts[counts["handled_by"] == "ai"]
    human = counts[counts["handled_by"] == "human"]
    if min(ai["n"].sum(), human["n"].sum()) < 2:
        return None
    return compare_counts(human, ai, level=level)


# ---------------------------------------------------------------------------------------------
# The chapter


def request_chapter(source, study: Study, quarter: str, queue_tickets: int | None, days: int | None = None,
                    level: float | None = None, threads: int | None = None, memory_limit: str | None = None,
                    temp_directory: str | None = None) -> dict:
    """Every request aggregate of the report for one quarter, over one DuckDB connection."""
    from study.data.config import quarter_bounds
    from study.stats.process import connect

    if not study.has_requests:
        raise RequestDataError("the study declares no service_requests section; there is no request chapter")
    level = level if level is not None else 1 - study.alpha
    if days is None:
        first, last = quarter_bounds(quarter)
        days = (last - first).days + 1
    con = connect(threads, memory_limit, temp_directory)
    try:
        log = open_requests(source, con=con)
        counts = {m: value_counts(log, m, ("channel", "handled_by")) for m in ("first_response_minutes", "resolution_minutes")}
        out: dict = {
            "volume": volume_by_channel(log, study),
            "heatmap": load_heatmap(log),
            "times_by_channel": response_times(log, study, "channel", counts),
            "times_by_handler": response_times(log, study, "handled_by", counts),
            "complaints": complaints_by_grade(log, study, level),
            "ai": ai_rates(log, level),
            "ai_by_channel": ai_rates(log, level, by="channel"),
            "rating_ai_vs_human": rating_ai_vs_human(log, level),
            "rating": rating_summary(log),
        }
        v = visits(study, quarter, queue_tickets)
        n_complaints = int(out["complaints"].loc[out["complaints"]["grade"] == "(all)", "complaints"].iloc[0])
        out["visits"] = v
        out["per_million"] = complaints_per_million(n_complaints, v["visits"], days, level) if v["visits"] > 0 else None
        out["levels"] = metric_levels(out, study, level)
        return out
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Levels of the request metrics, targets, and improvement measures on channels


def _mean_ci(mean: float, sd: float, n: int, level: float) -> tuple[float, float]:
    """t interval of a mean from its summary (= R ``t.test(x)$conf.int``)."""
    from scipy import stats

    if n < 2 or not np.isfinite(sd):
        return (np.nan, np.nan)
    h = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return (mean - h, mean + h)


def rating_summary(source, where: str | None = None) -> dict:
    """n, mean and standard deviation of the post-contact rating (optionally of the requests ``where`` holds)."""
    counts = rating_counts(source, "'(all)'", where)
    x, n = counts["rating"].to_numpy(float), counts["n"].to_numpy(np.int64)
    total = int(n.sum())
    if total == 0:
        return {"n": 0, "mean": np.nan, "sd": np.nan}
    mean = float((x * n).sum() / total)
    sd = float(math.sqrt(((x - mean) ** 2 * n).sum() / (total - 1))) if total > 1 else np.nan
    return {"n": total, "mean": mean, "sd": sd}


def metric_levels(chapter: dict, study: Study, level: float = 0.95) -> pd.DataFrame:
    """Each request metric of the study for one quarter's chapter (:func:`request_chapter`): its value, interval
    and what a comparison needs (``x``/``n`` of a share, ``mean``/``sd``/``n`` of a mean, count and exposure of
    a rate). Intervals: Wilson (shares), t (means), Garwood (the rate). A metric the quarter cannot measure (no
    AI conversations, no complaints, no ratings) has ``n`` = 0 and no value."""
    from study import metrics as mx

    rows = []
    times = chapter["times_by_channel"].iloc[-1]          # the (all) row
    comp = chapter["complaints"].set_index("grade").loc["(all)"]
    ai = chapter["ai"].iloc[0] if len(chapter["ai"]) else None

    def share(mid, x, n):
        p, lo, hi = wilson(int(x), int(n), level)
        rows.append({"metric": mid, "kind": "share", "value": p, "ci_low": lo, "ci_high": hi, "x": int(x), "n": int(n)})

    def mean(mid, m, sd, n):
        lo, hi = _mean_ci(m, sd, int(n), level)
        rows.append({"metric": mid, "kind": "mean", "value": m if n else np.nan, "ci_low": lo, "ci_high": hi, "mean": m,
                     "sd": sd, "n": int(n)})

    mean("request_first_response_minutes", times["first_response_mean"], times["first_response_sd"], times["n_responded"])
    mean("request_resolution_minutes", times["resolution_mean"], times["resolution_sd"], times["n_resolved"])
    for t in study.service_requests.response_targets:
        share(mx.response_metric_id(t.hours), times[f"within_{_h(t.hours)}"], times["n"])
    fcr_n = int(times["n_fcr_known"])
    share("first_contact_resolution", round(times["first_contact_resolution"] * fcr_n) if fcr_n else 0, fcr_n)
    share("complaint_within_deadline", comp["within_deadline"], comp["complaints"])
    share("ai_containment", ai["contained"] if ai is not None else 0, ai["ai_started"] if ai is not None else 0)
    share("ai_handoff", ai["handed_off"] if ai is not None else 0, ai["ai_started"] if ai is not None else 0)
    pm = chapter.get("per_million")
    if pm is not None:
        rows.append({"metric": "complaints_per_million", "kind": "rate", "value": pm["per_million"], "ci_low": pm["ci_low"],
                     "ci_high": pm["ci_high"], "x": pm["complaints"], "exposure": pm["visits"], "n": pm["visits"]})
    else:
        rows.append({"metric": "complaints_per_million", "kind": "rate", "value": np.nan, "ci_low": np.nan,
                     "ci_high": np.nan, "x": 0, "exposure": 0, "n": 0})
    if study.service_requests.rating_scale is not None:
        r = chapter.get("rating") or {"n": 0, "mean": np.nan, "sd": np.nan}
        mean("post_contact_rating", r["mean"], r["sd"], r["n"])
    return pd.DataFrame(rows)


def _difference(kind: str, a: pd.Series, b: pd.Series, level: float) -> tuple[float, float, float]:
    """after - before with the toolkit's change intervals: prop.test's (Yates) for shares, Welch for means."""
    from study.stats.effects import _prop_test, welch_from_stats

    if kind == "share":
        r = _prop_test(a["x"], int(a["n"]), b["x"], int(b["n"]), level)
        return r["estimate"], r["ci_low"], r["ci_high"]
    w = welch_from_stats(a["mean"], a["sd"] ** 2, a["n"], b["mean"], b["sd"] ** 2, b["n"], level)
    return w["estimate"], w["ci_low"], w["ci_high"]


def rate_ratio(x1: int, t1: float, x0: int, t0: float, level: float = 0.95) -> tuple[float, float, float]:
    """Ratio of two Poisson rates (x1/t1) / (x0/t0) with the exact conditional interval of R
    ``poisson.test(c(x1, x0), c(t1, t0))$conf.int``: x1 given x1 + x0 is binomial, its Clopper-Pearson interval
    (scipy ``binomtest(...).proportion_ci("exact")``) turned into a ratio."""
    from scipy import stats

    if x1 + x0 == 0:
        return (np.nan, np.nan, np.nan)
    ci = stats.binomtest(int(x1), int(x1 + x0)).proportion_ci(confidence_level=level, method="exact")
    f = t0 / t1

    def ratio(p):
        return p / (1 - p) * f if p < 1 else np.inf
    return (x1 / t1) / (x0 / t0) if x0 > 0 else np.inf, ratio(ci.low), ratio(ci.high)


def _relative(kind: str, a: pd.Series, b: pd.Series, level: float) -> tuple[float, float, float]:
    """after/before - 1: the exact rate ratio for the rate, else the delta method on the log ratio of the two
    levels (as :func:`study.stats.effects.target_attainment`)."""
    from scipy import stats

    if kind == "rate":
        r, lo, hi = rate_ratio(int(a["x"]), a["exposure"], int(b["x"]), b["exposure"], level)
        return r - 1, lo - 1, hi - 1
    z = stats.norm.ppf(0.5 + level / 2)
    ma, mb = a["value"], b["value"]
    sa, sb = (a["ci_high"] - a["ci_low"]) / (2 * z), (b["ci_high"] - b["ci_low"]) / (2 * z)
    if not (ma > 0 and mb > 0 and np.isfinite(sa) and np.isfinite(sb)):
        return (ma / mb - 1 if mb > 0 else np.nan), np.nan, np.nan
    sl = math.sqrt((sa / ma) ** 2 + (sb / mb) ** 2)
    return ma / mb - 1, math.exp(math.log(ma / mb) - z * sl) - 1, math.exp(math.log(ma / mb) + z * sl) - 1


TARGET_COLUMNS = ["target", "label", "metric", "kind", "operator", "target_value", "observed", "ci_low", "ci_high",
                  "status", "note"]


def target_attainment(study: Study, targets, current: pd.DataFrame, baseline: pd.DataFrame | None,
                      level: float = 0.95) -> pd.DataFrame:
    """The study's targets on request metrics (``targets``: entries of ``study.targets``) from the quarter's
    :func:`metric_levels` (and the baseline's, for change targets), in the columns and words of
    :func:`study.stats.effects.target_attainment`: met / not met / not distinguishable decided by the interval."""
    cur = current.set_index("metric")
    base = baseline.set_index("metric") if baseline is not None else None
    rows = []
    for t in targets:
        row = {"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
               "target_value": t.value, "observed": np.nan, "ci_low": np.nan, "ci_high": np.nan, "note": ""}
        a = cur.loc[t.metric] if t.metric in cur.index else None
        if a is None or not a["n"] or not np.isfinite(a["value"]):
            rows.append({**row, "status": "not measured", "note": "no requests this quarter measure it"})
            continue
        if t.kind == "level":
            obs, lo, hi = a["value"], a["ci_low"], a["ci_high"]
        else:
            b = base.loc[t.metric] if base is not None and t.metric in base.index else None
            if b is None or not b["n"] or not np.isfinite(b["value"]):
                rows.append({**row, "status": "no baseline" if base is None else "not measured",
                             "note": "a change target needs baseline data"})
                continue
            obs, lo, hi = (_difference(a["kind"], a, b, level) if t.kind == "change" else _relative(a["kind"], a, b, level))
            row["note"] = f"before {b['value']:.4g}, after {a['value']:.4g}"
        rows.append({**row, "observed": obs, "ci_low": lo, "ci_high": hi, "status": interval_verdict(lo, hi, t.operator, t.value)})
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def _measure_where(m) -> str:
    return f"channel IN ({_lit(m.channels)})"


def measure_effects(source, study: Study, measure, level: float = 0.95) -> pd.DataFrame:
    """Before/after a channel measure's start on its channels, per metric of the measure: before and after
    values, the change (Welch for durations; the toolkit's test rules, :func:`study.stats.effects.compare`, for the
    rating) and the relative change with their intervals. ``source``: the request logs of the quarters compared
    (the baseline's and this quarter's)."""
    start = pd.Timestamp(measure.start).isoformat(sep=" ")
    where = _measure_where(measure)
    log = open_requests(source)
    rows = []
    try:
        for metric in measure.metrics:
            if metric == "post_contact_rating":
                counts = rating_counts(log, f"received_at >= TIMESTAMP '{start}'", where)
                col = counts.columns[0]
                after, before = counts[counts[col]], counts[~counts[col]]
                n_after, n_before = int(after["n"].sum()), int(before["n"].sum())
                if min(n_after, n_before) < 2:
                    rows.append({"measure": measure.id, "metric": metric, "n_before": n_before, "n_after": n_after,
                                 "status": "not tested",
                                 "note": NP_("cell", "fewer than 2 ratings before or after the start")})
                    continue
                r = compare_counts(before, after, level=level)
                sa = {"value": r["after_value"], "mean": r["after_value"], "sd": math.sqrt(_moments(*_value_counts(after))["var"]),
                      "n": n_after}
                sb = {"value": r["before_value"], "mean": r["before_value"],
                      "sd": math.sqrt(_moments(*_value_counts(before))["var"]), "n": n_before}
                est, lo, hi, test, p = r["estimate"], r["ci_low"], r["ci_high"], r["test"], r["p"]
            else:
                col = {"request_first_response_minutes": "first_response_minutes",
                       "request_resolution_minutes": "resolution_minutes"}[metric]
                res = log.df(f"""SELECT received_at >= TIMESTAMP '{start}' AS after, count({col}) AS n, avg({col}) AS mean,
                                 stddev_samp({col}) AS sd FROM {log.view} WHERE {where} GROUP BY ALL""").set_index("after")
                if not {True, False} <= set(res.index) or min(res["n"]) < 2:
                    rows.append({"measure": measure.id, "metric": metric,
                                 "n_before": int(res["n"].get(False, 0)), "n_after": int(res["n"].get(True, 0)),
                                 "status": "not tested",
                                 "note": NP_("cell", "fewer than 2 requests before or after the start")})
                    continue
                sa = {"value": res.loc[True, "mean"], "mean": res.loc[True, "mean"], "sd": res.loc[True, "sd"], "n": int(res.loc[True, "n"])}
                sb = {"value": res.loc[False, "mean"], "mean": res.loc[False, "mean"], "sd": res.loc[False, "sd"], "n": int(res.loc[False, "n"])}
                est, lo, hi = _difference("mean", pd.Series(sa), pd.Series(sb), level)
                from scipy import stats

                va, vb = sa["sd"] ** 2 / sa["n"], sb["sd"] ** 2 / sb["n"]
                df = (va + vb) ** 2 / (va ** 2 / (sa["n"] - 1) + vb ** 2 / (sb["n"] - 1))
                p = float(2 * stats.t.sf(abs(est) / math.sqrt(va + vb), df))
                test = "welch"
            for d in (sa, sb):
                d["ci_low"], d["ci_high"] = _mean_ci(d["mean"], d["sd"], d["n"], level)
            rel, rlo, rhi = _relative("mean", pd.Series(sa), pd.Series(sb), level)
            rows.append({"measure": measure.id, "metric": metric, "n_before": sb["n"], "n_after": sa["n"],
                         "before": sb["value"], "after": sa["value"], "change": est, "ci_low": lo, "ci_high": hi,
                         "test": test, "p": p, "relative_change": rel, "relative_ci_low": rlo, "relative_ci_high": rhi,
                         "status": "tested", "note": ""})
    finally:
        _close(log, source)
    return pd.DataFrame(rows, columns=["measure", "metric", "n_before", "n_after", "before", "after", "change", "ci_low",
                                       "ci_high", "test", "p", "relative_change", "relative_ci_low", "relative_ci_high",
                                       "status", "note"])


def claim_verdicts(measure, effects: pd.DataFrame) -> pd.DataFrame:
    """Each claim of a channel measure against its before/after (:func:`measure_effects`)."""
    by = effects.set_index("metric") if len(effects) else effects
    rows = []
    for c in measure.claims:
        row = {"target": c.id, "label": c.label, "metric": c.metric, "kind": c.kind, "operator": c.operator,
               "target_value": c.value, "observed": np.nan, "ci_low": np.nan, "ci_high": np.nan, "note": ""}
        e = by.loc[c.metric] if c.metric in getattr(by, "index", []) else None
        if e is None or e["status"] != "tested":
            rows.append({**row, "status": "not measured", "note": "" if e is None else e["note"]})
            continue
        obs, lo, hi = ((e["change"], e["ci_low"], e["ci_high"]) if c.kind == "change"
                       else (e["relative_change"], e["relative_ci_low"], e["relative_ci_high"]))
        rows.append({**row, "observed": obs, "ci_low": lo, "ci_high": hi, "status": interval_verdict(lo, hi, c.operator, c.value)})
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def weekly_series(source, study: Study, measure) -> pd.DataFrame:
    """Per ISO week (Monday) on the measure's channels: requests, mean first-response minutes, mean rating,
    and the share of AI-started requests (long: week, metric, value, n)."""
    log = open_requests(source)
    try:
        df = log.df(f"""SELECT CAST(date_trunc('week', received_at) AS DATE) AS week, count(*) AS requests,
                        avg(first_response_minutes) AS request_first_response_minutes,
                        count(first_response_minutes) AS n_first,
                        avg(resolution_minutes) AS request_resolution_minutes, count(resolution_minutes) AS n_res,
                        avg(post_contact_rating) AS post_contact_rating, count(post_contact_rating) AS n_rating,
                        avg(CAST(ai_started AS DOUBLE)) AS ai_share
                        FROM {log.view} WHERE {_measure_where(measure)} GROUP BY week ORDER BY week""")
    finally:
        _close(log, source)
    parts = []
    for metric, n in (("request_first_response_minutes", "n_first"), ("request_resolution_minutes", "n_res"),
                      ("post_contact_rating", "n_rating"), ("ai_share", "requests")):
        parts.append(pd.DataFrame({"measure": measure.id, "week": df["week"], "metric": metric, "value": df[metric],
                                   "n": df[n].astype("int64")}))
    return pd.concat(parts, ignore_index=True)


def measure_its(weekly: pd.DataFrame, measure) -> pd.DataFrame:
    """Interrupted time series (:func:`study.stats.process.interrupted_time_series`: segmented regression, Newey-West
    errors) of the measure's weekly metrics; a metric without enough weeks is "not fitted" with the reason."""
    from study.stats.process import ProcessDataError, interrupted_time_series

    rows = []
    for metric in measure.metrics:
        s = weekly[(weekly["metric"] == metric) & (weekly["n"] > 0)]
        try:
            r = interrupted_time_series(s, measure.start)
        except ProcessDataError as exc:
            rows.append({"measure": measure.id, "metric": metric, "status": "not fitted", "note": str(exc)})
            continue
        rows.append({"measure": measure.id, "metric": metric, "status": "fitted", "note": "",
                     "level_change": r.level_change, "level_se": r.level_se, "level_p": r.level_p,
                     "relative_level_change": r.relative_level_change, "slope_change": r.slope_change,
                     "slope_p": r.slope_p, "n_pre": r.n_pre, "n_post": r.n_post})
    return pd.DataFrame(rows, columns=["measure", "metric", "status", "note", "level_change", "level_se", "level_p",
                                       "relative_level_change", "slope_change", "slope_p", "n_pre", "n_post"])


def request_analysis(study: Study, current, quarter: str, queue_tickets: int | None, baseline=None,
                     baseline_quarter: str | None = None, baseline_tickets: int | None = None,
                     level: float | None = None) -> dict:
    """Everything the report shows of the request log: this quarter's chapter (:func:`request_chapter`), the
    baseline's metric levels, the study's targets on request metrics (:func:`target_attainment`) and, per
    channel measure, its before/after (:func:`measure_effects`) over the quarters supplied, the claims'
    verdicts, the weekly series and the interrupted time series. ``current``/``baseline``: processed request
    logs (path or frame; ``baseline`` None when the baseline quarter has none)."""
    from study import metrics as mx

    level = level if level is not None else 1 - study.alpha
    chapter = request_chapter(current, study, quarter, queue_tickets, level=level)
    base_levels = None
    if baseline is not None and baseline_quarter:
        base_levels = request_chapter(baseline, study, baseline_quarter, baseline_tickets, level=level)["levels"]
    reg = mx.registry(study)
    req_targets = [t for t in study.targets if t.metric in reg and reg[t.metric].source == "requests"]
    out = {"chapter": chapter, "baseline_levels": base_levels,
           "targets": target_attainment(study, req_targets, chapter["levels"], base_levels, level)}
    sources = [x for x in (baseline, current) if x is not None]
    sources = sources if all(not isinstance(x, pd.DataFrame) for x in sources) else pd.concat(sources, ignore_index=True)
    effects, claims, weekly, its = [], [], [], []
    for m in study.service_requests.measures:
        e = measure_effects(sources, study, m, level)
        w = weekly_series(sources, study, m)
        effects.append(e)
        claims.append(claim_verdicts(m, e).assign(measure=m.id))
        weekly.append(w)
        its.append(measure_its(w, m))
    out["measure_effects"] = pd.concat(effects, ignore_index=True) if effects else pd.DataFrame()
    out["claims"] = pd.concat(claims, ignore_index=True) if claims else pd.DataFrame()
    out["weekly"] = pd.concat(weekly, ignore_index=True) if weekly else pd.DataFrame()
    out["its"] = pd.concat(its, ignore_index=True) if its else pd.DataFrame()
    return out
