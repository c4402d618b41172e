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

from study.config import Study
from study.errors import StudyError

QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95}
_DERIVED = {"first_response_minutes": ("received_at", "first_response_at"),
            "resolution_minutes": ("received_at", "resolved_at")}
_OPTIONAL = {"branch_id": "VARCHAR", "category": "VARCHAR", "complaint_grade": "VARCHAR",
             "resolved_first_contact": "BOOLEAN", "post_contact_rating": "DOUBLE", "escalated": "BOOLEAN"}
WEEKDAYS = tuple(range(1, 8))    # ISO: 1 = Monday ... 7 = Sunday


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
    from study.process import _parquet_files, connect

    if isinstance(source, RequestLog):
        return source
    owned = con is None
    con = con or connect(threads, memory_limit, temp_directory)
    if isinstance(source, pd.DataFrame):
        con.register("requests_input", source)
        base = "requests_input"
    else:
        files = _parquet_files(source)
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        base = f"read_parquet([{listing}], union_by_name = true)"
    cols = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {base}").fetchall()]
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


def _lit(values: Sequence[str]) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


# ---------------------------------------------------------------------------------------------
# Volumes


def volume_by_channel(source, study: Study | None = None) -> pd.DataFrame:
    """Requests per channel (study order first, then any other id seen): n, share, AI-started, complaints."""
    log = open_requests(source)
    try:
        df = log.df(f"""SELECT channel, count(*) AS n, sum(CAST(ai_started AS INTEGER)) AS ai_started,
                        sum(CAST(is_complaint AS INTEGER)) AS complaints FROM {log.view} GROUP BY channel""")
    finally:
        log.close()
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
        log.close()
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


def response_times(source, study: Study, by: str | None = "channel") -> pd.DataFrame:
    """First-response and resolution time (minutes: mean, median, p90, p95), the share answered within
    each of the study's response targets and the share resolved at the first contact (of the requests where it
    is recorded, ``n_fcr_known``), per ``by`` (``channel``, ``handled_by``, ``branch_id``,
    ``category``; None: all requests) with a final ``(all)`` row when grouped."""
    targets = [t.hours for t in study.service_requests.response_targets] if study.has_requests else [24.0]
    log = open_requests(source)
    try:
        parts = []
        for key in ([by] if by else []) + [None]:
            sel = f"{key} AS grp" if key else "'(all)' AS grp"
            group = "GROUP BY grp" if key else ""
            aggs = ["count(*) AS n", "count(first_response_minutes) AS n_responded",
                    "count(resolution_minutes) AS n_resolved", "count(resolved_first_contact) AS n_fcr_known",
                    "avg(CAST(resolved_first_contact AS DOUBLE)) AS first_contact_resolution"]
            for m, short in (("first_response_minutes", "first_response"), ("resolution_minutes", "resolution")):
                aggs.append(f"avg({m}) AS {short}_mean")
                aggs += [f"quantile_cont({m}, {p}) AS {short}_{q}" for q, p in QUANTILES.items()]
            for h in targets:
                aggs.append(f"sum(CASE WHEN first_response_minutes <= {float(h) * 60!r} THEN 1 ELSE 0 END) AS within_{_h(h)}")
            parts.append(log.df(f"SELECT {sel}, {', '.join(aggs)} FROM {log.view} {group}"))
    finally:
        log.close()
    df = pd.concat(parts, ignore_index=True)
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
    """'met' / 'not met' / 'undecided' from an interval: met when the whole interval is on the target's side,
    not met when the whole interval is on the other side, undecided when it contains the target."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undecided"
    if operator == "<=":
        return "met" if high <= value else "not met" if low > value else "undecided"
    if operator == ">=":
        return "met" if low >= value else "not met" if high < value else "undecided"
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
        log.close()
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
        log.close()
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
        log.close()


def _expand(counts: pd.DataFrame) -> np.ndarray:
    return np.repeat(counts["rating"].to_numpy(float), counts["n"].to_numpy(np.int64))


def rating_ai_vs_human(source, level: float = 0.95, where: str | None = None) -> pd.Series | None:
    """Post-contact rating of requests the AI handled to the end vs those a human handled, with the toolkit's
    test rules (:func:`study.effects.compare`; ``before`` = human, ``after`` = AI, so the estimate is AI -
    human). The ratings come back from DuckDB as counts per value (a rating is on a short integer scale), so
    the log is never loaded. None when either group has fewer than 2 ratings."""
    from study.effects import compare

    counts = rating_counts(source, "lower(handled_by)", where).rename(columns={"lower(handled_by)": "handled_by"})
    ai = _expand(counts[counts["handled_by"] == "ai"])
    human = _expand(counts[counts["handled_by"] == "human"])
    if min(len(ai), len(human)) < 2:
        return None
    return compare(human, ai, kind="continuous", level=level)


# ---------------------------------------------------------------------------------------------
# The chapter


def request_chapter(source, study: Study, quarter: str, queue_tickets: int | None, days: int | None = None,
                    level: float | None = None, threads: int | None = None, memory_limit: str | None = None,
                    temp_directory: str | None = None) -> dict:
    """Every request aggregate of the report for one quarter, over one DuckDB connection."""
    from study.config import quarter_bounds
    from study.process import connect

    if not study.has_requests:
        raise RequestDataError("the study declares no service_requests section; there is no request chapter")
    level = level if level is not None else 1 - study.alpha
    if days is None:
        first, last = quarter_bounds(quarter)
        days = (last - first).days + 1
    con = connect(threads, memory_limit, temp_directory)
    try:
        log = open_requests(source, con=con)
        log.owned = False
        out: dict = {
            "volume": volume_by_channel(log, study),
            "heatmap": load_heatmap(log),
            "times_by_channel": response_times(log, study, "channel"),
            "times_by_handler": response_times(log, study, "handled_by"),
            "complaints": complaints_by_grade(log, study, level),
            "ai": ai_rates(log, level),
            "ai_by_channel": ai_rates(log, level, by="channel"),
            "rating_ai_vs_human": rating_ai_vs_human(log, level),
        }
        v = visits(study, quarter, queue_tickets)
        n_complaints = int(out["complaints"].loc[out["complaints"]["grade"] == "(all)", "complaints"].iloc[0])
        out["visits"] = v
        out["per_million"] = complaints_per_million(n_complaints, v["visits"], days, level) if v["visits"] > 0 else None
        return out
    finally:
        con.close()
