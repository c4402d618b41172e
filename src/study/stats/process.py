"""Process times, queues and staffing: the process-time chapter, out-of-core with DuckDB.

Every aggregate is computed by DuckDB streaming over the processed Parquet log (a file, a list of
files, a folder -- searched recursively -- or a glob; a pandas DataFrame is accepted for small
in-memory use and registered as a DuckDB view). The whole log is never loaded into pandas: only
the aggregated tables come back.

Per ticket (minutes; derived in SQL from the timestamps when the minute columns are absent):
``waiting = called_at - issued_at``, ``handling = finished_at - started_at``,
``cycle = finished_at - issued_at``.

Percentiles are **exact** and use the definition of ``numpy.quantile(method="linear")`` = R's
``quantile(type = 7)`` = DuckDB's ``quantile_cont``: for the sorted non-missing values
``x_(0) <= ... <= x_(n-1)`` and ``h = (n - 1) p``, ``Q(p) = x_(floor h) + (h - floor h) (x_(floor h + 1) - x_(floor h))``
(Hyndman & Fan 1996, definition 7). Two engines compute them and give the same numbers:

* ``engine="histogram"`` (default when the data allow it; :func:`_scan`): DuckDB (both threads)
  decodes only the needed Parquet columns into Arrow batches of 250k rows -- the string ids
  already as their position in the study's id list, evaluated once per dictionary entry -- and
  numpy, in two threads, turns each batch into hour/date/week codes and one-second grid indices
  (whole seconds: queue systems record seconds, so the processed minutes are multiples of 1/60;
  ``round(60 v) / 60 == v`` is checked for every value) and counts them with ``np.add.at`` into
  per-thread histograms (group x second), summed at the end. The quantiles are read off the
  cumulative counts with the formula above. One pass serves all groupings, all three measures
  and the branch x date x hour cube (:func:`branch_hour_cube`: saturation, staffing, Little's law,
  weekly series); memory is bounded by the histograms, not by the log. A measure with values off
  the one-second grid, ids outside the study's, or a grouping with too many cells fall back to
  the SQL engine automatically;
* ``engine="sql"``: DuckDB's ``quantile_cont`` per group (exact, holds each group's values).

Queueing formulas (M/M/c, Erlang C): with arrival rate ``lambda``, service rate ``mu`` per server,
``c`` servers and offered load ``A = lambda / mu`` (Erlangs),
``C(c, A) = [A^c / c! * c / (c - A)] / [sum_{k<c} A^k / k! + A^c / c! * c / (c - A)]`` is the probability
that an arrival waits, and ``P(W <= t) = 1 - C(c, A) exp(-(c mu - lambda) t)`` the share served within
``t`` (Erlang 1917; Gross & Harris, *Fundamentals of Queueing Theory*, section 2.3). C is computed
through the numerically stable Erlang B recursion ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))``,
``C = c B / (c - A (1 - B))``.

Little's law ``L = lambda W`` (Little 1961) is checked per branch by estimating ``L`` independently:
the number of customers waiting is sampled at every whole minute of the opening hours of every
open day; ``lambda`` is arrivals per minute of opening time and ``W`` the mean waiting time.

The interrupted time series is a segmented regression of the weekly mean
``y_t = b0 + b1 t + b2 post_t + b3 (t - t0) post_t + e_t`` (Wagner et al. 2002) with
Newey-West (HAC, Bartlett kernel) standard errors (Newey & West 1987): statsmodels' ``cov_type="HAC"``
(:func:`ols_hac`).
"""

from __future__ import annotations

import datetime as dt
import glob as _glob
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import numpy as np
import pandas as pd

from study.data.config import Study
from study.errors import DataFileError, StudyError
from study.i18n import NP_
from study.metrics import PROCESS_METRIC_IDS

MEASURES = ("waiting_minutes", "handling_minutes", "cycle_minutes")
QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95}
STATS = ("mean",) + tuple(QUANTILES)
# Grouping keys accepted by ``by`` and their SQL expressions.
KEYS = {
    "business_type": "business_type",
    "branch_id": "branch_id",
    "channel": "channel",
    "segment": "segment",          # optional column: the customer segment of a ticket (mass, VIP, private banking)
    "counter_id": "counter_id",
    "hour": "CAST(hour(issued_at) AS INTEGER)",
    "week": "CAST(date_trunc('week', issued_at) AS DATE)",   # ISO week, starting Monday
    "date": "CAST(issued_at AS DATE)",
}
_DERIVED = {
    "waiting_minutes": ("issued_at", "called_at"),
    "handling_minutes": ("started_at", "finished_at"),
    "cycle_minutes": ("issued_at", "finished_at"),
}
GRID = 60.0                      # values per minute on the histogram grid: whole seconds
MAX_HIST_CELLS = 60_000_000      # groups x grid points above which a grouping uses the SQL engine
MAX_SHARED_UNIT = 32             # two one-key groupings with at most this many key pairs share one histogram
MAX_CUBE_CELLS = 20_000_000      # branches x days x hours above which the cube is a SQL query
MAX_COUNTER_BINS = 200_000_000   # cube cells x counters above which distinct counters are a SQL query
SCAN_BATCH_ROWS = 250_000        # rows per Arrow batch handed from DuckDB to numpy (small: stays in cache)
DEFAULT_WAITING_TARGET = 10.0


class ProcessDataError(StudyError):
    """The process-time log cannot be analysed as asked (missing columns, unknown grouping ...)."""


# ---------------------------------------------------------------------------------------------
# Connection and source


@dataclass
class TicketLog:
    """A DuckDB connection with a view ``tickets`` over the processed log (derived minutes included)."""

    con: duckdb.DuckDBPyConnection
    view: str = "tickets"
    columns: tuple[str, ...] = ()
    _owned: bool = True
    files: tuple[str, ...] = ()

    def sql(self, query: str):
        return self.con.sql(query)

    def close(self) -> None:
        if self._owned:
            self.con.close()


def connect(threads: int | None = None, memory_limit: str | None = None,
            temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the given resource settings."""
    config: dict = {}
    if threads:
        config["threads"] = int(threads)
    if memory_limit:
        config["memory_limit"] = memory_limit
    if temp_directory:
        config["temp_directory"] = str(temp_directory)
    return duckdb.connect(config=config)


def _parquet_files(source) -> list[str]:
    if isinstance(source, (list, tuple)):
        files: list[str] = []
        for s in source:
            files += _parquet_files(s)
        return files
    s = str(source)
    if any(ch in s for ch in "*?["):
        files = sorted(_glob.glob(s, recursive=True))
    elif os.path.isdir(s):
        files = sorted(str(p) for p in Path(s).rglob("*.parquet"))
    elif os.path.isfile(s):
        files = [s]
    else:
        raise DataFileError(f"{s}: no such Parquet file or folder. Pass the processed process_times.parquet, "
                            "its folder, a list of files or a glob such as data/processed/*/process_times*.parquet.")
    if not files:
        raise DataFileError(f"{s}: no Parquet files found. Run `python -m study prepare` or `python -m study sample` first.")
    return files


def sql_list(values) -> str:
    """Values as a comma-separated list of SQL string literals (single quotes doubled)."""
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def log_relation(con: duckdb.DuckDBPyConnection, source, name: str) -> tuple[str, list[str], list[str]]:
    """The SQL relation a processed log is read from — a DataFrame registered as ``name``, or ``read_parquet`` over
    the files of a path/list/folder/glob — with those files and the relation's columns."""
    files: list[str] = []
    if isinstance(source, pd.DataFrame):
        con.register(name, source)
        base = name
    else:
        files = _parquet_files(source)
        base = f"read_parquet([{sql_list(files)}], union_by_name = true)"
    cols = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {base}").fetchall()]
    return base, files, cols


def open_log(source, con: duckdb.DuckDBPyConnection | None = None, threads: int | None = None,
             memory_limit: str | None = None, temp_directory: str | None = None) -> TicketLog:
    """Open a processed ticket log (Parquet path/list/folder/glob, DataFrame, or an open TicketLog)."""
    if isinstance(source, TicketLog):
        return source
    owned = con is None
    con = con or connect(threads, memory_limit, temp_directory)
    base, files, cols = log_relation(con, source, "tickets_input")
    extra = []
    for m, (a, b) in _DERIVED.items():
        if m not in cols:
            if a not in cols or b not in cols:
                raise ProcessDataError(f"the process log has neither '{m}' nor the timestamps '{a}' and '{b}' to derive it from; "
                                       f"columns found: {cols}")
            extra.append(f"date_diff('microsecond', {a}, {b}) / 60000000.0 AS {m}")
    if "channel" not in cols:
        extra.append("CAST(NULL AS VARCHAR) AS channel")
    if "segment" not in cols:
        extra.append("CAST(NULL AS VARCHAR) AS segment")
    for needed in ("branch_id", "business_type", "issued_at"):
        if needed not in cols:
            raise ProcessDataError(f"the process log has no '{needed}' column; columns found: {cols}")
    select = "*" + "".join(", " + e for e in extra)
    con.execute(f"CREATE OR REPLACE TEMP VIEW tickets AS SELECT {select} FROM {base}")
    all_cols = tuple(cols) + tuple(e.rsplit(" AS ", 1)[1] for e in extra)
    return TicketLog(con, "tickets", all_cols, owned, tuple(files))


def _check_by(by) -> tuple[str, ...]:
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by:
        raise ProcessDataError("by must name at least one grouping key; use e.g. by=('business_type',)")
    bad = [k for k in by if k not in KEYS]
    if bad:
        raise ProcessDataError(f"unknown grouping key(s) {bad} in by; choose from {list(KEYS)}")
    if len(set(by)) != len(by):
        raise ProcessDataError(f"by={by} names a key twice")
    return by


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------
# Exact quantiles from value counts


def quantiles_from_counts(values: np.ndarray, counts: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Exact ``numpy.quantile(method='linear')`` of the data given as sorted distinct ``values`` and ``counts``."""
    values = np.asarray(values, dtype=float)
    counts = np.asarray(counts, dtype=np.int64)
    keep = counts > 0
    values, counts = values[keep], counts[keep]
    n = int(counts.sum())
    if n == 0:
        return np.full(len(probs), np.nan)
    cum = np.cumsum(counts)
    out = np.empty(len(probs))
    for i, p in enumerate(probs):
        h = (n - 1) * p
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        v_lo = values[np.searchsorted(cum, lo, side="right")]
        v_hi = values[np.searchsorted(cum, hi, side="right")]
        t = h - lo
        # numpy's _lerp: a + (b - a) t, computed from the nearer end for t >= 0.5
        out[i] = v_hi - (v_hi - v_lo) * (1 - t) if t >= 0.5 else v_lo + (v_hi - v_lo) * t
    return out


# ---------------------------------------------------------------------------------------------
# summarise


def summarise(source, by: str | Sequence[str] = ("business_type",), study: Study | None = None,
              waiting_target: float | None = None, engine: str = "auto") -> pd.DataFrame:
    """One row per group: ``n``, ``<measure>_{mean,median,p90,p95}`` of waiting, handling and cycle
    minutes, ``within_service_level`` (share of tickets with waiting <= target) and
    ``first_pass_yield``; with ``business_type`` in ``by`` and a study: ``standard_minutes``,
    ``deviation_pct = (handling mean - standard) / standard * 100``, ``ideal_cycle_minutes`` and
    ``improvement_potential = cycle mean - ideal`` (the digest's 48 - 30 = 18 min).

    ``by``: any of business_type, branch_id, channel, counter_id, hour (of issued_at), week (ISO
    week start of issued_at), date, or a combination. ``waiting_target`` defaults to the study's
    ``service_level.waiting_target_minutes`` (10 min). ``engine``: "auto", "histogram" or "sql"
    (see the module docstring; both are exact).
    """
    return summarise_many(source, [by], study=study, waiting_target=waiting_target, engine=engine)[0]


def summarise_many(source, bys: Iterable[str | Sequence[str]], study: Study | None = None,
                   waiting_target: float | None = None, engine: str = "auto",
                   batch_rows: int = SCAN_BATCH_ROWS) -> list[pd.DataFrame]:
    """:func:`summarise` for several groupings at once, in a single pass over the log."""
    if engine not in ("auto", "histogram", "sql"):
        raise ValueError(f"engine must be 'auto', 'histogram' or 'sql', not {engine!r}")
    bys = [_check_by(b) for b in bys]
    target = _waiting_target(study, waiting_target)
    log = open_log(source)
    try:
        if engine == "sql":
            out = [_summarise_sql(log, by, target) for by in bys]
        else:
            res = _scan(log, bys, target, strict=(engine == "histogram"), study=study, batch_rows=batch_rows)
            out = [s if s is not None else _summarise_sql(log, by, target) for s, by in zip(res.summaries, bys)]
        return [_add_standards(df, by, study) for df, by in zip(out, bys)]
    finally:
        if not isinstance(source, TicketLog):
            log.close()


def _waiting_target(study: Study | None, waiting_target: float | None) -> float:
    if waiting_target is not None:
        return float(waiting_target)
    return float(study.service_level.waiting_target_minutes) if study is not None else DEFAULT_WAITING_TARGET


def _summarise_sql(log: TicketLog, by: Sequence[str], target: float) -> pd.DataFrame:
    keys = ", ".join(f"{KEYS[k]} AS {_q(k)}" for k in by)
    probs = "[" + ", ".join(str(p) for p in QUANTILES.values()) + "]"
    aggs = ["count(*) AS n"]
    for m in MEASURES:
        aggs.append(f"avg({m}) AS {m}_mean")
        aggs.append(f"quantile_cont({m}, {probs}) AS {m}_q")
    aggs.append(f"avg(CASE WHEN waiting_minutes IS NULL THEN NULL WHEN waiting_minutes <= {target!r} THEN 1.0 ELSE 0.0 END) AS within_service_level")
    aggs.append("avg(CAST(first_pass AS DOUBLE)) AS first_pass_yield" if "first_pass" in log.columns
                else "CAST(NULL AS DOUBLE) AS first_pass_yield")
    groups = ", ".join(str(i + 1) for i in range(len(by)))
    df = log.sql(f"SELECT {keys}, {', '.join(aggs)} FROM {log.view} GROUP BY {groups} ORDER BY {groups}").df()
    for m in MEASURES:
        q = df.pop(f"{m}_q")
        for j, name in enumerate(QUANTILES):
            df[f"{m}_{name}"] = [v[j] if isinstance(v, (list, tuple, np.ndarray)) else np.nan for v in q]
    return _order_columns(df, by)


def _order_columns(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    cols = list(by) + ["n"] + [f"{m}_{s}" for m in MEASURES for s in STATS] + ["within_service_level", "first_pass_yield"]
    df = df[cols].reset_index(drop=True)
    df["n"] = df["n"].astype("int64")
    for k in ("week", "date"):
        if k in by:
            df[k] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in df[k]]
    if "hour" in by:
        df["hour"] = df["hour"].astype("Int64")
    for k in ("business_type", "branch_id", "channel", "counter_id"):
        if k in by:
            df[k] = df[k].astype(object).where(df[k].notna(), None)
    return df


def _bounds(log: TicketLog) -> dict[str, tuple]:
    """Min and max of issued_at and of each measure: from Parquet statistics when every row group
    has them (free), otherwise by one aggregate query."""
    cols = ("issued_at",) + MEASURES
    if log.files:
        listing = sql_list(log.files)
        try:
            rows = log.sql(f"""SELECT path_in_schema, list(stats_min_value), list(stats_max_value), count(*),
                                      count(stats_min_value), count(stats_max_value)
                               FROM parquet_metadata([{listing}]) GROUP BY 1""").fetchall()
            st = {r[0]: r for r in rows}
            if all(c in st and st[c][3] == st[c][4] == st[c][5] for c in cols):
                out = {}
                for c in cols:
                    conv = pd.Timestamp if c == "issued_at" else float
                    out[c] = (min(conv(v) for v in st[c][1]), max(conv(v) for v in st[c][2]))
                return out
        except (duckdb.Error, ValueError):
            pass
    sel = ", ".join(f"min({c}), max({c})" for c in cols)
    r = log.sql(f"SELECT {sel} FROM {log.view}").fetchall()[0]
    return {c: (r[2 * i], r[2 * i + 1]) for i, c in enumerate(cols)}


@dataclass
class _KeyCode:
    """How the scan codes a grouping key as 0..size-1 (see :func:`_key_codes`)."""

    sql: str | None                   # DuckDB expression giving the 1-based position (string keys); None: from issued_at
    lookup: np.ndarray | None = None  # position (NULL -> 0) -> code
    lo_day: int | None = None         # date/week: days since 1970-01-01 of the first level


def _int_type(n: int) -> str:
    return "UTINYINT" if n < 2**8 else "USMALLINT" if n < 2**16 else "UINTEGER"


def _position_sql(expr: str, values: list, con, name: str) -> str:
    """1-based position of ``expr`` in ``values`` (NULL when absent): list_position for short lists, an ENUM
    (hash lookup) for long ones."""
    lit = sql_list(values)
    if len(values) <= 256:
        return f"list_position([{lit}], {expr})"
    con.execute(f"CREATE OR REPLACE TYPE {name} AS ENUM ({lit})")
    return f"(CAST(enum_code(TRY_CAST({expr} AS {name})) AS INTEGER) + 1)"


def _key_codes(log: TicketLog, k: str, study: Study | None, bounds: dict) -> tuple[_KeyCode, list, int | None]:
    """How to code key ``k`` as 0..size-1, its levels (the last ones NULL and, for ids, unknown), and the
    code of values outside the known ids (None when there cannot be any)."""
    if k == "hour":
        return _KeyCode(None), list(range(24)) + [None], None
    if k in ("week", "date"):
        first, last = bounds["issued_at"]
        if first is None:
            return _KeyCode(None), [None], None
        step = 7 if k == "week" else 1
        lo = pd.Timestamp(first).date()
        if k == "week":
            lo = lo - dt.timedelta(days=lo.weekday())
        span = (pd.Timestamp(last).date() - lo).days // step + 1
        return (_KeyCode(None, lo_day=(lo - dt.date(1970, 1, 1)).days),
                [lo + dt.timedelta(days=step * i) for i in range(span)] + [None], None)
    e = KEYS[k]
    known = None
    if study is not None:
        known = {"branch_id": study.branch_ids, "business_type": study.business_type_ids,
                 "channel": [c.id for c in study.ticket_channels] or None,
                 "segment": [x.id for x in study.segments] or None}.get(k)
    if known is None:
        known = [r[0] for r in log.sql(f"SELECT DISTINCT {e} FROM {log.view} WHERE {e} IS NOT NULL ORDER BY 1").fetchall()]
    known = sorted(str(v) for v in known)
    n = len(known)
    # 1-based position in the ids (NULL for NULL and for unknown ids: those two told apart by `IS NULL`).
    # No COALESCE around the column: DuckDB then evaluates the function once per dictionary entry.
    pos = _position_sql(e, known or ["\x00(no ids)"], log.con, f"study_{k}_enum")
    lookup = np.array([n + 1] + list(range(n)), dtype=np.int64)     # position -> code; 0 (absent) -> unknown
    return (_KeyCode(f"CAST({pos} AS {_int_type(n + 2)})", lookup),
            known + [None, "<unknown>"], n + 1)


@dataclass
class _ScanResult:
    """What one scan of the log produced: a summary (or None = use the SQL engine) per grouping, and the cube."""

    summaries: list
    cube: pd.DataFrame | None


_ALLOCATOR_TUNED = False


def _tune_allocator() -> None:
    """Keep freed scratch memory in the heap between batches (glibc only; once per process).

    Each batch of the scan creates dozens of short-lived arrays of a few MB. With glibc's default
    thresholds every one is an mmap/munmap pair, and the scan spends more time in the kernel than
    counting (measured on 10M tickets: 1.2 s of 1.8 s). Raising M_MMAP_THRESHOLD to 64 MB and
    M_TRIM_THRESHOLD to 1 GB (mallopt) keeps that memory for reuse; peak memory is unchanged.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or not os.uname().sysname == "Linux":
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD
        libc.mallopt(-3, 1 << 26)   # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def _scan(log: TicketLog, bys: list[tuple[str, ...]], target: float, strict: bool, study: Study | None,
          want_cube: bool = False, batch_rows: int = SCAN_BATCH_ROWS, workers: int = 2) -> _ScanResult:
    """One streaming pass over the log: value counts on the one-second grid for every grouping x measure
    (exact quantiles) and, with ``want_cube``, the branch x date x hour cube.

    DuckDB (all its threads) reads only the needed columns and hands them over as Arrow batches -- the
    string keys already as small integer codes (position in the list of ids), the timestamps as
    microseconds and the minutes as they are. numpy then derives hour, date and week codes and the grid
    index of each measure, and counts with ``np.add.at`` (in place: no temporary of a histogram's size)
    in ``workers`` threads (numpy releases the GIL), each thread into its own accumulators, summed at
    the end. Memory: the histograms (groups x grid points) and a few batches in flight, never the log.
    """
    _tune_allocator()
    bounds = _bounds(log)
    cube_keys = ("branch_id", "date", "hour") if want_cube else ()
    keys = sorted({k for by in bys for k in by} | set(cube_keys), key=list(KEYS).index)
    code, levels, unknown = {}, {}, {}
    for k in keys:
        code[k], levels[k], unknown[k] = _key_codes(log, k, study, bounds)
    sizes = {k: len(levels[k]) for k in keys}
    grid = {}
    for m in MEASURES:
        vmin, vmax = bounds[m]
        if vmin is None or not (np.isfinite(vmin) and np.isfinite(vmax)):
            grid[m] = None
        else:
            lo, hi = math.floor(vmin * GRID), math.ceil(vmax * GRID)
            grid[m] = (lo, hi - lo + 1)            # bins 0..width-1 values, width = NULL, width + 1 = off the grid
    n_groups = [int(np.prod([sizes[k] for k in by])) for by in bys]
    use_hist = [all(grid[m] is not None for m in MEASURES)
                and n * max(grid[m][1] + 2 for m in MEASURES) <= MAX_HIST_CELLS for n in n_groups]
    if strict and not all(use_hist):
        raise ProcessDataError("engine='histogram' cannot summarise here (a measure without values or too many groups); "
                               "use engine='auto' or 'sql'")
    fp = "first_pass" in log.columns
    time_keys = [k for k in keys if k in ("hour", "date", "week")]

    sel = []
    for k in keys:
        if code[k].sql:
            sel += [f"{code[k].sql} AS k_{k}", f"{KEYS[k]} IS NULL AS z_{k}"]
    if time_keys or want_cube:
        sel.append("CAST(issued_at AS TIMESTAMP) AS issued_at")
    sel += [f"{m} AS {m}" for m in MEASURES if grid[m] or want_cube]
    if fp:
        sel.append("first_pass")

    cube_shape = None
    counters: list | None = None
    open_h = close_h = 0
    if want_cube:
        nb, nd, nh = sizes["branch_id"], sizes["date"], sizes["hour"]
        if nb * nd * nh <= MAX_CUBE_CELLS:
            cube_shape = (nb, nd, nh)
            open_h, close_h = _opening(study, log)
            if "called_at" in log.columns:
                sel.append("CAST(called_at AS TIMESTAMP) AS called_at")
            if "counter_id" in log.columns:
                counters = [r[0] for r in log.sql(f"SELECT DISTINCT counter_id FROM {log.view} "
                                                  "WHERE counter_id IS NOT NULL ORDER BY 1").fetchall()]
                if nb * nd * nh * (len(counters) + 1) <= MAX_COUNTER_BINS:
                    pos = _position_sql("counter_id", counters, log.con, "study_counter_enum")
                    sel.append(f"CAST({pos} AS {_int_type(len(counters) + 1)}) AS ctr")
                else:
                    counters = None                 # too many: counted by a SQL query afterwards
    if not any(use_hist) and not cube_shape:
        return _ScanResult([None] * len(bys), None)

    width2 = {m: grid[m][1] + 2 for m in MEASURES if grid[m]}
    # histogram units: each grouping is counted in a unit of keys and read off by summing out the others; two
    # one-key groupings with few levels share one unit (e.g. channel x business type), one pass less each
    units: list[tuple[str, ...]] = []
    unit_of: dict[int, int] = {}
    singles = sorted((i for i, by in enumerate(bys) if use_hist[i] and len(by) == 1), key=lambda i: sizes[bys[i][0]])
    for i, by in enumerate(bys):
        if not use_hist[i] or i in unit_of:
            continue
        if len(by) == 1:
            partner = next((j for j in singles if j != i and j not in unit_of and bys[j][0] != by[0]
                            and sizes[by[0]] * sizes[bys[j][0]] <= MAX_SHARED_UNIT), None)
            if partner is not None:
                unit_of[partner] = len(units)
            unit_of[i] = len(units)
            units.append(by + ((bys[partner][0],) if partner is not None else ()))
        else:
            unit_of[i] = len(units)
            units.append(by)
    unit_groups = [int(np.prod([sizes[k] for k in u])) for u in units]
    hist_len = {(u, m): unit_groups[u] * width2[m] * (3 if m == MEASURES[0] else 1)
                for u in range(len(units)) for m in MEASURES}
    ncell = int(np.prod(cube_shape)) if cube_shape else 0
    nctr = len(counters) + 1 if counters is not None else 0
    local = threading.local()
    accs: list[dict] = []
    lock = threading.Lock()
    day_us, hour_us, min_us = 86_400_000_000, 3_600_000_000, 60_000_000

    def acc() -> dict:
        a = getattr(local, "acc", None)
        if a is None:
            a = {key: np.zeros(n, np.int64) for key, n in hist_len.items()}
            if cube_shape:
                a["c"] = np.zeros(ncell, np.int64)
                a["cw"] = np.zeros(ncell, np.int64)
                a["cf"] = np.zeros(3 * ncell, np.int64)
                a["lg"] = np.zeros(ncell, np.int64)
                for m in MEASURES:
                    a[f"v_{m}"] = np.zeros(ncell)
                    a[f"z_{m}"] = np.zeros(ncell, np.int64)       # NULL values per cell
                if nctr:
                    a["cc"] = np.zeros(ncell * nctr, dtype=bool)
            local.acc = a
            with lock:
                accs.append(a)
        return a

    def ts_us(arr):
        """int64 microseconds and a validity mask (None when no NULLs)."""
        if arr.null_count:
            ok = ~np.asarray(arr.is_null())
            return arr.fill_null(0).to_numpy().view(np.int64), ok
        return arr.to_numpy().view(np.int64), None

    def count(batch) -> None:
        a = acc()
        col = {name: batch.column(j) for j, name in enumerate(batch.schema.names)}
        n = batch.num_rows
        kc: dict[str, np.ndarray] = {}
        for k in keys:
            if code[k].sql:
                pos = col[f"k_{k}"]
                if pos.null_count == 0:                  # all known ids: code = position - 1
                    kc[k] = np.subtract(pos.to_numpy(), 1, dtype=pos.type.to_pandas_dtype())
                else:
                    ck = code[k].lookup[pos.fill_null(0).to_numpy()]
                    ck[col[f"z_{k}"].to_numpy(zero_copy_only=False)] = sizes[k] - 2      # NULL level
                    kc[k] = ck
        if "issued_at" in col:
            iu, iok = ts_us(col["issued_at"])
            day = iu // day_us
            tod = iu - day * day_us
            if "hour" in keys:
                h = tod // hour_us
                if iok is not None:
                    h[~iok] = 24
                kc["hour"] = h
            for k in ("date", "week"):
                if k in keys:
                    if code[k].lo_day is None:
                        kc[k] = np.zeros(n, np.int64)
                        continue
                    d = day - code[k].lo_day
                    if k == "week":
                        d //= 7
                    if iok is not None:
                        d[~iok] = sizes[k] - 1
                    kc[k] = d
        # grid index of each measure: v is on the grid when round(60 v) / 60 == v (NaN = NULL never is)
        s: dict[str, np.ndarray] = {}
        vals: dict[str, tuple] = {}
        for m in MEASURES:
            if m not in col:
                continue
            v = col[m]
            ok = ~np.asarray(v.is_null()) if v.null_count else None
            x = v.to_numpy(zero_copy_only=False)
            vals[m] = (x, ok)
            if grid[m]:
                lo, width = grid[m]
                r = np.multiply(x, GRID)
                np.rint(r, out=r)
                on = np.divide(r, GRID) == x
                with np.errstate(invalid="ignore"):
                    si = r.astype(np.int64)
                si -= lo
                if not on.all():
                    si[~on] = width + 1
                    if ok is not None:
                        si[~ok] = width
                elif si.min() < 0 or si.max() >= width:      # bounds were wrong: force the SQL engine
                    si[(si < 0) | (si >= width)] = width + 1
                s[m] = si
        f = None
        if fp:
            fv = col["first_pass"]
            f = fv.fill_null(False).to_numpy(zero_copy_only=False).view(np.uint8)
            if fv.null_count:
                f = f.astype(np.int64)
                f[np.asarray(fv.is_null())] = 2
        buf = np.empty(n, np.int64)
        for i, by in enumerate(units):
            g = kc[by[0]]
            if len(by) > 1:
                g = g.astype(np.int64)
                for k in by[1:]:
                    g *= sizes[k]
                    g += kc[k]
            for m in MEASURES:
                if m == MEASURES[0]:
                    # the first measure also carries first_pass (0/1/NULL = 2): index (g * 3 + fp) * width + s
                    np.multiply(g, 3, out=buf, dtype=np.int64)
                    if fp:
                        np.add(buf, f, out=buf)
                    else:
                        buf += 2
                    buf *= width2[m]
                else:
                    np.multiply(g, width2[m], out=buf, dtype=np.int64)
                buf += s[m]
                np.add.at(a[(i, m)], buf, 1)        # no temporary of the histogram's size (bincount would allocate one)
        if cube_shape:
            nb, nd, nh = cube_shape
            c = np.multiply(kc["branch_id"], nd, dtype=np.int64)
            c += kc["date"]
            c *= nh
            c += kc["hour"]
            np.add.at(a["c"], c, 1)
            w = vals["waiting_minutes"][0]
            np.add.at(a["cw"], c[w <= target], 1)
            if fp:
                np.multiply(c, 3, out=buf)
                np.add(buf, f, out=buf)
                np.add.at(a["cf"], buf, 1)
            for m in MEASURES:
                x, ok = vals[m]
                if ok is not None:
                    np.add.at(a[f"v_{m}"], c[ok], x[ok])
                    np.add.at(a[f"z_{m}"], c[~ok], 1)
                else:
                    np.add.at(a[f"v_{m}"], c, x)
            if "called_at" in col:
                # whole minutes of opening time at which the ticket was waiting (issued <= minute < called):
                # ceil(clamp(called)) - ceil(clamp(issued)), minutes of the day; a call on a later day counts to closing
                cu, cok = ts_us(col["called_at"])
                cday = cu // day_us
                lo_min, hi_min = open_h * 60, close_h * 60
                ci = tod + (min_us - 1)
                ci //= min_us
                np.clip(ci, lo_min, hi_min, out=ci)
                cc = cu - cday * day_us
                cc += min_us - 1
                cc //= min_us
                np.clip(cc, lo_min, hi_min, out=cc)
                cc[cday > day] = hi_min
                cc -= ci
                np.maximum(cc, 0, out=cc)
                if cok is not None:
                    cc[~cok] = 0
                np.add.at(a["lg"], c, cc)
            if nctr:
                np.multiply(c, nctr, out=buf)
                ctr = col["ctr"]
                np.add(buf, (ctr.fill_null(0) if ctr.null_count else ctr).to_numpy(), out=buf)
                a["cc"][buf] = True

    reader = log.sql(f"SELECT {', '.join(sel)} FROM {log.view}").to_arrow_reader(batch_rows)
    try:
        if workers <= 1:
            for batch in reader:
                count(batch)
        else:
            with ThreadPoolExecutor(max_workers=workers) as ex:
                pending: list = []
                for batch in reader:
                    pending.append(ex.submit(count, batch))
                    if len(pending) > workers:
                        pending.pop(0).result()
                for fut in pending:
                    fut.result()
    finally:
        reader.close()
        del reader
    total: dict = {}
    for key in (accs[0] if accs else {}):
        total[key] = accs[0][key]
        for other in accs[1:]:
            total[key] = (total[key] | other[key]) if total[key].dtype == bool else total[key] + other[key]

    summaries: list = []
    for i, by in enumerate(bys):
        if not use_hist[i] or not total:
            summaries.append(None)
            continue
        u = units[unit_of[i]]
        shape = [sizes[k] for k in u]
        drop = tuple(j for j, k in enumerate(u) if k not in by)     # a unit keeps the order of its groupings' keys

        def read(m: str, extra: tuple) -> np.ndarray:
            h = total[(unit_of[i], m)].reshape(shape + list(extra))  # noqa: B023 - read() is used in this iteration
            return (h.sum(axis=drop) if drop else h).reshape((n_groups[i],) + extra)  # noqa: B023

        first = read(MEASURES[0], (3, width2[MEASURES[0]]))
        hists = {m: read(m, (width2[m],)) for m in MEASURES[1:]}
        hists[MEASURES[0]] = first.sum(axis=1)
        if any(hists[m][:, -1].any() for m in MEASURES):
            if strict:
                raise ProcessDataError("engine='histogram' needs minute values on the one-second grid (whole seconds); "
                                       "use engine='auto' or 'sql'")
            summaries.append(None)
            continue
        rows = hists[MEASURES[0]].sum(axis=1)
        present = np.nonzero(rows)[0]
        if _has_unknown(present, by, sizes, unknown):
            if strict:
                raise ProcessDataError(f"engine='histogram' cannot summarise by {by} here (values outside the study's "
                                       "ids or too many groups); use engine='auto' or 'sql'")
            summaries.append(None)
            continue
        summaries.append(_hist_frame(by, present, rows, hists, first.sum(axis=2), fp,
                                     levels, sizes, grid, target))
    cube = None
    if cube_shape and total:
        cube = _cube_frame(total, cube_shape, levels, unknown, nctr, fp, (open_h, close_h), log)
    return _ScanResult(summaries, cube)


def _has_unknown(present: np.ndarray, by, sizes: dict, unknown: dict) -> bool:
    rem = present.copy()
    for k in reversed(by):
        if unknown[k] is not None and np.any(rem % sizes[k] == unknown[k]):
            return True
        rem //= sizes[k]
    return False


def _hist_frame(by, present, rows, hists, fpc, fp, levels, sizes, grid, target) -> pd.DataFrame:
    """The summary table of one grouping from its value counts (exact mean and type-7 quantiles)."""
    rem = present.copy()
    key_vals = {}
    for k in reversed(by):
        key_vals[k] = [levels[k][j] for j in rem % sizes[k]]
        rem //= sizes[k]
    df = pd.DataFrame({k: key_vals[k] for k in by})
    df["n"] = rows[present]
    probs = list(QUANTILES.values())
    for m in MEASURES:
        lo, width = grid[m]
        h = hists[m][present, :width]
        tot = h.sum(axis=1)
        svals = np.arange(width, dtype=np.int64) + lo
        with np.errstate(invalid="ignore", divide="ignore"):
            df[f"{m}_mean"] = np.where(tot > 0, (h @ svals.astype(float)) / GRID / np.maximum(tot, 1), np.nan)
        qa = np.full((len(present), len(QUANTILES)), np.nan)
        for r in range(len(present)):
            nz = np.nonzero(h[r])[0]
            if nz.size:
                qa[r] = quantiles_from_counts(svals[nz] / GRID, h[r][nz], probs)
        for j, name in enumerate(QUANTILES):
            df[f"{m}_{name}"] = qa[:, j]
        if m == "waiting_minutes":
            within = h[:, svals <= math.floor(target * GRID + 1e-9)].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                df["within_service_level"] = np.where(tot > 0, within / np.maximum(tot, 1), np.nan)
    if fp:
        f = fpc[present]
        fn = f[:, 0] + f[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            df["first_pass_yield"] = np.where(fn > 0, f[:, 1] / np.maximum(fn, 1), np.nan)
    else:
        df["first_pass_yield"] = np.nan
    df = df.sort_values(list(by), na_position="last", kind="stable")
    return _order_columns(df, by)


def _cube_frame(total: dict, shape: tuple[int, int, int], levels: dict, unknown: dict, nctr: int, fp: bool,
                opening: tuple[int, int], log: TicketLog) -> pd.DataFrame | None:
    """The branch x date x hour cube from the scan's counts (None: fall back to the SQL query)."""
    nb, nd, nh = shape
    ncell = nb * nd * nh
    tickets = total["c"]
    present = np.nonzero(tickets)[0]
    b_idx, rem = np.divmod(present, nd * nh)
    d_idx, h_idx = np.divmod(rem, nh)
    if unknown["branch_id"] is not None and np.any(b_idx == unknown["branch_id"]):
        return None
    cube = pd.DataFrame({"branch_id": [levels["branch_id"][j] for j in b_idx],
                         "date": pd.to_datetime(pd.Series([levels["date"][j] for j in d_idx], dtype=object)).astype("datetime64[us]"),
                         "hour": pd.array([levels["hour"][j] for j in h_idx], dtype="Int32")})
    if not cube["hour"].isna().any():
        cube["hour"] = cube["hour"].astype("int32")
    cube["tickets"] = tickets[present]
    names = {"handling_minutes": "handling", "waiting_minutes": "waiting", "cycle_minutes": "cycle"}
    for m in ("handling_minutes", "waiting_minutes", "cycle_minutes"):
        n = tickets[present] - total[f"z_{m}"][present]
        cube[f"{names[m]}_sum"] = np.where(n > 0, total[f"v_{m}"][present], np.nan)
        cube[f"{names[m]}_n"] = n
    cube["within_sl"] = total["cw"][:ncell][present].astype(float)
    f = total["cf"].reshape(ncell, 3)[present]
    cube["first_pass_n"] = (f[:, 0] + f[:, 1]) if fp else 0
    cube["first_pass_sum"] = np.where(cube["first_pass_n"] > 0, f[:, 1].astype(float), np.nan) if fp else 0
    if nctr:
        cube["counters_used"] = total["cc"].reshape(ncell, nctr)[present, 1:].sum(axis=1).astype(np.int64)
    elif "counter_id" in log.columns:
        sql = log.sql(f"""SELECT {KEYS['branch_id']} AS branch_id, {KEYS['date']} AS date, {KEYS['hour']} AS hour,
                                 count(DISTINCT counter_id) AS counters_used FROM {log.view} GROUP BY 1, 2, 3""").df()
        sql["date"] = sql["date"].astype("datetime64[us]")
        cube = cube.merge(sql, on=["branch_id", "date", "hour"], how="left")
        cube["counters_used"] = cube["counters_used"].fillna(0).astype(np.int64)
    else:
        cube["counters_used"] = pd.array([pd.NA] * len(cube), dtype="Int64")
    has_called = "called_at" in log.columns
    cube["littles_grid"] = total["lg"][present].astype(float) if has_called else np.nan
    cube["open_hour"], cube["close_hour"] = opening
    return cube.sort_values(["branch_id", "date", "hour"], na_position="last", kind="stable").reset_index(drop=True)


def _add_standards(df: pd.DataFrame, by: Sequence[str], study: Study | None) -> pd.DataFrame:
    if study is None or "business_type" not in by:
        return df
    std = {b.id: b.standard_minutes for b in study.business_types}
    ideal = {b.id: b.ideal_cycle_minutes for b in study.business_types}
    df = df.copy()
    df["standard_minutes"] = df["business_type"].map(std).astype(float)
    df["deviation_pct"] = (df["handling_minutes_mean"] - df["standard_minutes"]) / df["standard_minutes"] * 100.0
    df["ideal_cycle_minutes"] = df["business_type"].map(ideal).astype(float)
    df["improvement_potential"] = df["cycle_minutes_mean"] - df["ideal_cycle_minutes"]
    return df


# ---------------------------------------------------------------------------------------------
# Branch x date x hour cube: saturation, staffing, Little's law, weekly series


def _opening(study: Study | None, log: TicketLog) -> tuple[int, int]:
    if study is not None:
        oh = study.service_level.opening_hours
        return int(oh.open), int(oh.close)
    lo, hi = log.sql(f"SELECT min(hour(issued_at)), max(hour(issued_at)) FROM {log.view}").fetchall()[0]
    return int(lo), int(hi) + 1


def branch_hour_cube(source, study: Study | None = None, waiting_target: float | None = None,
                     engine: str = "auto") -> pd.DataFrame:
    """One row per branch x date x hour of issue, with the sums the queue analyses need.

    Columns: branch_id, date, hour, tickets, handling_sum, handling_n, waiting_sum, waiting_n,
    cycle_sum, cycle_n, within_sl, first_pass_n, first_pass_sum, counters_used (distinct
    counter_id), open_hours (opening hours from study.yml, as columns open_hour/close_hour),
    littles_grid (sum over tickets of the whole minutes of opening time at which the ticket was
    waiting: issued <= minute < called). Small (branches x days x hours), computed in one scan: by the
    streaming counter of :func:`_scan` (``engine="auto"``) or one SQL GROUP BY (``engine="sql"``, also the
    fallback for branches outside the study's ids or very large cubes).
    """
    if engine not in ("auto", "sql"):
        raise ValueError(f"engine must be 'auto' or 'sql', not {engine!r}")
    log = open_log(source)
    try:
        target = _waiting_target(study, waiting_target)
        if engine == "auto":
            res = _scan(log, [], target, strict=False, study=study, want_cube=True)
            if res.cube is not None:
                return res.cube
        return _branch_hour_cube_sql(log, study, target)
    finally:
        if not isinstance(source, TicketLog):
            log.close()


def _branch_hour_cube_sql(log: TicketLog, study: Study | None, target: float) -> pd.DataFrame:
    open_h, close_h = _opening(study, log)
    a_min, b_min = open_h * 60, close_h * 60
    iss = "(epoch_us(issued_at) - epoch_us(date_trunc('day', issued_at))) / 60000000.0"
    cal = (f"CASE WHEN called_at IS NULL THEN NULL WHEN CAST(called_at AS DATE) > CAST(issued_at AS DATE) THEN {b_min}.0 "
           "ELSE (epoch_us(called_at) - epoch_us(date_trunc('day', called_at))) / 60000000.0 END")
    grid = (f"greatest(0, ceil(least(greatest({cal}, {a_min}), {b_min})) - ceil(least(greatest({iss}, {a_min}), {b_min})))"
            if "called_at" in log.columns else "NULL")
    fp = ("count(first_pass) AS first_pass_n, sum(CAST(first_pass AS INTEGER)) AS first_pass_sum"
          if "first_pass" in log.columns else "0 AS first_pass_n, 0 AS first_pass_sum")
    counters = "count(DISTINCT counter_id)" if "counter_id" in log.columns else "CAST(NULL AS BIGINT)"
    q = f"""
        SELECT branch_id, CAST(issued_at AS DATE) AS date, CAST(hour(issued_at) AS INTEGER) AS hour,
               count(*) AS tickets,
               sum(handling_minutes) AS handling_sum, count(handling_minutes) AS handling_n,
               sum(waiting_minutes) AS waiting_sum, count(waiting_minutes) AS waiting_n,
               sum(cycle_minutes) AS cycle_sum, count(cycle_minutes) AS cycle_n,
               sum(CASE WHEN waiting_minutes <= {target!r} THEN 1 ELSE 0 END) AS within_sl,
               {fp},
               {counters} AS counters_used,
               sum({grid}) AS littles_grid
        FROM {log.view} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    cube = log.sql(q).df()
    cube["open_hour"], cube["close_hour"] = open_h, close_h
    return cube


def _cube(source, study, cube):
    return cube if cube is not None else branch_hour_cube(source, study)


def saturation(source, study: Study, cube: pd.DataFrame | None = None) -> pd.DataFrame:
    """Staff saturation F per branch x hour of day.

    ``offered_load = sum of handling minutes in that hour / (60 x open days of the branch)``
    (Erlangs: the mean number of counters busy), ``F = offered_load / counters`` with the counters
    of study.yml (``saturation``), and against the counters actually used (mean number of distinct
    counter_id per branch-hour-day, ``saturation_used``). Status: overloaded (F >= 1), high
    (>= 0.85), low (< 0.5), balanced.
    """
    c = _cube(source, study, cube)
    days = c.groupby("branch_id")["date"].nunique().rename("open_days")
    g = c.groupby(["branch_id", "hour"], as_index=False).agg(
        tickets=("tickets", "sum"), handling_sum=("handling_sum", "sum"), counters_used=("counters_used", "mean"))
    g = g.merge(days, on="branch_id")
    counters = {b.id: b.counters for b in study.branches}
    g["counters"] = g["branch_id"].map(counters).astype(float)
    g["arrivals_per_hour"] = g["tickets"] / g["open_days"]
    g["offered_load"] = g["handling_sum"] / (60.0 * g["open_days"])
    g["saturation"] = g["offered_load"] / g["counters"]
    g["saturation_used"] = g["offered_load"] / g["counters_used"]
    g["status"] = np.select([g["saturation"] >= 1.0, g["saturation"] >= 0.85, g["saturation"] < 0.5],
                            ["overloaded", "high", "low"], "balanced")
    return g[["branch_id", "hour", "open_days", "tickets", "arrivals_per_hour", "offered_load", "counters",
              "counters_used", "saturation", "saturation_used", "status"]]


def littles_law(source, study: Study | None = None, cube: pd.DataFrame | None = None) -> pd.DataFrame:
    """Little's law ``L = lambda W`` per branch, as a consistency check of the timestamps.

    ``L`` (observed) = mean number of customers waiting, sampled at every whole minute of the
    opening hours of every open day; ``lambda`` = tickets per minute of opening time; ``W`` = mean
    waiting minutes; ``relative_discrepancy = (L - lambda W) / (lambda W)``. Close to 0 for
    consistent data (waits that run past closing time make it slightly negative).
    """
    c = _cube(source, study, cube)
    open_min = float((c["close_hour"].iloc[0] - c["open_hour"].iloc[0]) * 60) if len(c) else np.nan
    g = c.groupby("branch_id").agg(open_days=("date", "nunique"), tickets=("tickets", "sum"),
                                   waiting_sum=("waiting_sum", "sum"), waiting_n=("waiting_n", "sum"),
                                   littles_grid=("littles_grid", "sum"))
    minutes = g["open_days"] * open_min
    out = pd.DataFrame({"branch_id": g.index, "open_days": g["open_days"].to_numpy()})
    out["arrival_rate_per_hour"] = (g["tickets"] / minutes * 60.0).to_numpy()
    out["mean_waiting_minutes"] = (g["waiting_sum"] / g["waiting_n"]).to_numpy()
    out["L_observed"] = (g["littles_grid"] / minutes).to_numpy()
    out["lambda_W"] = (g["tickets"] / minutes * g["waiting_sum"] / g["waiting_n"]).to_numpy()
    out["relative_discrepancy"] = out["L_observed"] / out["lambda_W"] - 1.0
    return out.reset_index(drop=True)


# -- Erlang C ---------------------------------------------------------------------------------


def _erlang_b(servers: int, load: float) -> float:
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Probability that an arrival has to wait in an M/M/c queue (Erlang C); 1 when ``servers <= A``."""
    if arrival_rate < 0 or service_rate <= 0 or servers < 0:
        raise ValueError("arrival_rate must be >= 0, service_rate > 0 and servers >= 0")
    a = arrival_rate / service_rate
    if arrival_rate == 0:
        return 0.0
    if servers <= a:
        return 1.0
    b = _erlang_b(int(servers), a)
    return servers * b / (servers - a * (1.0 - b))


def service_level(arrival_rate: float, service_rate: float, servers: int, target_wait: float) -> float:
    """``P(W <= t) = 1 - C(c, A) exp(-(c mu - lambda) t)`` (0 when the queue is unstable).

    Rates and ``target_wait`` in the same time unit (e.g. per hour and hours).
    """
    if arrival_rate == 0:
        return 1.0
    if servers <= arrival_rate / service_rate:
        return 0.0
    pw = erlang_c(arrival_rate, service_rate, servers)
    return 1.0 - pw * math.exp(-(servers * service_rate - arrival_rate) * target_wait)


def mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean waiting time ``C / (c mu - lambda)`` (infinite when unstable)."""
    if servers <= arrival_rate / service_rate:
        return math.inf
    return erlang_c(arrival_rate, service_rate, servers) / (servers * service_rate - arrival_rate)


def required_servers(arrival_rate: float, service_rate: float, target_wait: float, target_share: float,
                     max_servers: int = 1_000_000) -> int:
    """Smallest ``c`` with ``P(W <= target_wait) >= target_share`` (0 when there are no arrivals)."""
    if not 0 < target_share < 1:
        raise ValueError(f"target_share must be between 0 and 1, got {target_share}")
    if arrival_rate <= 0:
        return 0
    a = arrival_rate / service_rate
    c = int(math.floor(a)) + 1
    b = _erlang_b(c - 1, a)
    while c <= max_servers:
        b = a * b / (c + a * b)                      # Erlang B for c servers
        pw = c * b / (c - a * (1.0 - b))
        sl = 1.0 - pw * math.exp(-(c * service_rate - arrival_rate) * target_wait)
        if sl >= target_share:
            return c
        c += 1
    raise ValueError(f"no staffing up to {max_servers} servers reaches the target")


def staffing(source, study: Study, cube: pd.DataFrame | None = None, target_wait_minutes: float | None = None,
             target_share: float | None = None) -> pd.DataFrame:
    """Counters needed per branch x hour (Erlang C, M/M/c) next to the counters actually used.

    ``arrival_rate`` = tickets in that hour / open days; ``mean_handling`` from the log; the
    target is the study's service level (share ``target_share`` of customers called within
    ``waiting_target_minutes``). ``difference = counters_needed - counters_used`` (rounded) and a
    recommendation: add counters at peaks, move spare counters from off-peak hours.
    """
    c = _cube(source, study, cube)
    t_wait = float(target_wait_minutes if target_wait_minutes is not None else study.service_level.waiting_target_minutes)
    share = float(target_share if target_share is not None else study.service_level.target_share)
    days = c.groupby("branch_id")["date"].nunique().rename("open_days")
    g = c.groupby(["branch_id", "hour"], as_index=False).agg(
        tickets=("tickets", "sum"), handling_sum=("handling_sum", "sum"), handling_n=("handling_n", "sum"),
        counters_used=("counters_used", "mean"))
    g = g.merge(days, on="branch_id")
    g["arrivals_per_hour"] = g["tickets"] / g["open_days"]
    g["mean_handling_minutes"] = g["handling_sum"] / g["handling_n"]
    g["offered_load"] = g["arrivals_per_hour"] * g["mean_handling_minutes"] / 60.0
    needed = []
    for lam, h in zip(g["arrivals_per_hour"], g["mean_handling_minutes"]):
        needed.append(required_servers(lam, 60.0 / h, t_wait / 60.0, share) if h > 0 and lam > 0 else 0)
    g["counters_needed"] = needed
    used = g["counters_used"].round().astype("Int64")
    g["difference"] = g["counters_needed"] - used
    g["service_level_now"] = [service_level(lam, 60.0 / h, int(u), t_wait / 60.0) if h > 0 and pd.notna(u) else np.nan
                              for lam, h, u in zip(g["arrivals_per_hour"], g["mean_handling_minutes"], used)]

    def advice(d) -> str:
        if pd.isna(d):
            return "no counter data"
        if d > 0:
            return f"add {int(d)} counter(s) (peak: below the {share:.0%} within {t_wait:g} min target)"
        if d < 0:
            return f"{int(-d)} counter(s) can move to peak hours"
        return "keep the counters as they are"

    g["recommendation"] = [advice(d) for d in g["difference"]]
    return g[["branch_id", "hour", "open_days", "arrivals_per_hour", "mean_handling_minutes", "offered_load",
              "counters_used", "counters_needed", "difference", "service_level_now", "recommendation"]]


# -- weekly series and interrupted time series -------------------------------------------------


def weekly_series(source, study: Study, measure_id: str | None = None, cube: pd.DataFrame | None = None) -> pd.DataFrame:
    """Weekly process metrics of pilot and control branches for each measure (long format).

    Columns: measure, group (pilot/control), week (ISO week start, Monday), metric, value, tickets.
    Metrics: waiting_minutes, handling_minutes, cycle_minutes (means), within_service_level,
    first_pass_yield. Aggregated by DuckDB (through the branch x date x hour cube).
    """
    c = _cube(source, study, cube).copy()
    c["week"] = pd.to_datetime(c["date"]) - pd.to_timedelta(pd.to_datetime(c["date"]).dt.day_of_week, unit="D")
    rows = []
    measures = [m for m in study.measures if measure_id is None or m.id == measure_id]
    if measure_id is not None and not measures:
        raise ProcessDataError(f"no measure '{measure_id}' in the study definition")
    for m in measures:
        for group, branches in (("pilot", m.pilot), ("control", m.control)):
            sub = c[c["branch_id"].isin(branches)]
            if sub.empty:
                continue
            w = sub.groupby("week").agg(tickets=("tickets", "sum"), ws=("waiting_sum", "sum"), wn=("waiting_n", "sum"),
                                        hs=("handling_sum", "sum"), hn=("handling_n", "sum"), cs=("cycle_sum", "sum"),
                                        cn=("cycle_n", "sum"), sl=("within_sl", "sum"), fs=("first_pass_sum", "sum"),
                                        fn=("first_pass_n", "sum"))
            vals = {"waiting_minutes": w.ws / w.wn, "handling_minutes": w.hs / w.hn, "cycle_minutes": w.cs / w.cn,
                    "within_service_level": w.sl / w.wn, "first_pass_yield": w.fs / w.fn.where(w.fn > 0)}
            for metric, v in vals.items():
                rows.append(pd.DataFrame({"measure": m.id, "group": group, "week": w.index.date, "metric": metric,
                                          "value": v.to_numpy(dtype=float), "tickets": w.tickets.to_numpy()}))
    if not rows:
        return pd.DataFrame(columns=["measure", "group", "week", "metric", "value", "tickets"])
    return pd.concat(rows, ignore_index=True)


@dataclass
class ITSResult:
    """Segmented regression ``y = b0 + b1 t + b2 post + b3 (t - t0) post`` with HAC standard errors."""

    level_change: float
    level_se: float
    level_p: float
    slope_change: float
    slope_se: float
    slope_p: float
    pre_slope: float
    pre_level: float             # fitted pre-trend value at the first post week (counterfactual)
    relative_level_change: float  # level_change / pre_level
    n_pre: int
    n_post: int
    maxlags: int
    params: pd.DataFrame = field(repr=False, default=None)


def ols_hac(y: np.ndarray, X: np.ndarray, maxlags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS estimates with Newey-West (HAC) standard errors and normal p-values:
    ``statsmodels`` ``OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": True})``.

    ``b = (X'X)^-1 X'y``; with ``u = y - X b`` and the scores ``g_t = x_t u_t``,
    ``S = sum_t g_t g_t' + sum_{l=1..L} (1 - l / (L + 1)) sum_t (g_t g_{t-l}' + g_{t-l} g_t')`` (Bartlett kernel),
    ``V = n / (n - k) (X'X)^-1 S (X'X)^-1`` (small-sample corrected; Newey & West 1987), as R
    ``sandwich::NeweyWest(fit, lag = L, prewhite = FALSE, adjust = TRUE)``. statsmodels' regression module
    costs about 0.07 s of import on top of scipy.stats, and only when an ITS is fitted.
    """
    from statsmodels.regression.linear_model import OLS

    fit = OLS(np.asarray(y, dtype=float), np.asarray(X, dtype=float)).fit(
        cov_type="HAC", cov_kwds={"maxlags": int(maxlags), "use_correction": True})
    return np.asarray(fit.params), np.asarray(fit.bse), np.asarray(fit.pvalues)


def interrupted_time_series(weekly: pd.DataFrame, start: dt.date | str, value: str = "value", week: str = "week",
                            maxlags: int | None = None, exclude_transition: bool = True) -> ITSResult:
    """Interrupted time series of a weekly series around ``start`` (Wagner et al. 2002).

    ``weekly`` has one row per week (``week`` = the week's Monday, ``value``). Weeks starting on or
    after ``start`` are post; the week containing ``start`` (when ``start`` is not a Monday) is
    left out when ``exclude_transition``. ``t`` counts weeks from the first week; ``t0`` is the
    first post week. Standard errors: Newey-West (HAC, Bartlett kernel, small-sample corrected),
    ``maxlags`` default ``floor(4 (T/100)^(2/9))`` (Newey & West 1994).
    """
    start = pd.Timestamp(start).date() if not isinstance(start, dt.date) else start
    df = weekly[[week, value]].dropna().copy()
    df[week] = pd.to_datetime(df[week]).dt.date
    df = df.sort_values(week)
    week_end = df[week].map(lambda d: d + dt.timedelta(days=7))
    transition = (df[week] < start) & (week_end > start)
    if exclude_transition:
        df = df[~transition]
    post = (df[week] >= start).to_numpy()
    if post.sum() < 2 or (~post).sum() < 3:
        raise ProcessDataError(NP_("reason", "interrupted time series needs at least 3 weeks before and 2 weeks after {}; the "
                                   "data have {} before and {} after").format(start, (~post).sum(), post.sum()))
    first = df[week].iloc[0]
    t = np.array([(d - first).days / 7.0 for d in df[week]])
    t0 = t[post].min()
    X = np.column_stack([np.ones(len(t)), t, post.astype(float), np.where(post, t - t0, 0.0)])
    y = df[value].to_numpy(dtype=float)
    n = len(y)
    lags = int(maxlags) if maxlags is not None else int(math.floor(4 * (n / 100.0) ** (2.0 / 9.0)))
    b, se, p = ols_hac(y, X, lags)
    pre_level = b[0] + b[1] * t0
    params = pd.DataFrame({"term": ["intercept", "time", "level_change", "slope_change"], "estimate": b,
                           "se": se, "p": p})
    return ITSResult(float(b[2]), float(se[2]), float(p[2]), float(b[3]), float(se[3]), float(p[3]), float(b[1]),
                     float(pre_level), float(b[2] / pre_level) if pre_level else np.nan, int((~post).sum()),
                     int(post.sum()), lags, params)


ITS_COLUMNS = ["measure", "metric", "group", "status", "note", "level_change", "level_se", "level_p",
               "relative_level_change", "slope_change", "slope_se", "slope_p", "pre_slope", "n_pre", "n_post", "maxlags"]


def its_by_measure(source, study: Study, metrics: Sequence[str] | None = None, cube: pd.DataFrame | None = None,
                   weekly: pd.DataFrame | None = None) -> pd.DataFrame:
    """ITS of each measure on its own queue-log metrics (those of ``m.metrics`` in PROCESS_METRIC_IDS, or
    ``metrics``), separately for pilot and control branches.

    Never raises for a measure's calendar: where the weeks do not allow a fit (fewer than 3 weeks
    before or 2 after the start, e.g. a measure that starts after the data or started before
    them), or a group has no tickets, the row has ``status`` "not fitted" and the reason in
    ``note``; a measure without a queue-log metric has one such row with metric None.
    Columns: :data:`ITS_COLUMNS` (``status`` "fitted" rows carry the estimates).
    """
    w = weekly if weekly is not None else weekly_series(source, study, cube=cube)
    rows = []
    for m in study.measures:
        wanted = [x for x in (metrics or m.metrics) if x in PROCESS_METRIC_IDS]
        if not wanted:
            rows.append({"measure": m.id, "metric": None, "group": None, "status": "not fitted",
                         "note": NP_("reason", "the measure lists no queue-log metric")})
        for metric in wanted:
            for group, branches in (("pilot", m.pilot), ("control", m.control)):
                if not branches:
                    continue
                s = w[(w["measure"] == m.id) & (w["group"] == group) & (w["metric"] == metric)]
                if s["value"].notna().sum() == 0:
                    rows.append({"measure": m.id, "metric": metric, "group": group, "status": "not fitted",
                                 "note": (NP_("reason", "no tickets in the pilot branches") if group == "pilot" else
                                          NP_("reason", "no tickets in the control branches"))})
                    continue
                try:
                    r = interrupted_time_series(s, m.start)
                except ProcessDataError as exc:
                    rows.append({"measure": m.id, "metric": metric, "group": group, "status": "not fitted",
                                 "note": str(exc)})
                    continue
                rows.append({"measure": m.id, "metric": metric, "group": group, "status": "fitted", "note": "",
                             "level_change": r.level_change, "level_se": r.level_se, "level_p": r.level_p,
                             "relative_level_change": r.relative_level_change, "slope_change": r.slope_change,
                             "slope_se": r.slope_se, "slope_p": r.slope_p, "pre_slope": r.pre_slope, "n_pre": r.n_pre,
                             "n_post": r.n_post, "maxlags": r.maxlags})
    return pd.DataFrame(rows, columns=ITS_COLUMNS)


# ---------------------------------------------------------------------------------------------
# The whole chapter


CHAPTER_GROUPINGS = (("business_type",), ("branch_id",), ("channel",), ("hour",), ("week",))


def _has_segments(log: TicketLog) -> bool:
    """Whether the log has a ``segment`` column with at least one value (the column is optional)."""
    if "segment" not in log.columns:
        return False
    return bool(log.sql(f"SELECT count(segment) FROM {log.view}").fetchall()[0][0])


def process_chapter(source, study: Study, threads: int | None = None, memory_limit: str | None = None,
                    temp_directory: str | None = None) -> dict[str, pd.DataFrame]:
    """All process-time aggregates of the report: summaries by business type, branch, channel, hour
    and week, saturation, staffing, Little's law and the ITS of each measure -- all from one streaming
    pass over the log (:func:`_scan`), with the SQL engine only as a fallback."""
    log = open_log(source, threads=threads, memory_limit=memory_limit, temp_directory=temp_directory)
    try:
        target = _waiting_target(study, None)
        bys = [_check_by(b) for b in CHAPTER_GROUPINGS]
        if _has_segments(log):  # waiting and handling by customer segment where the log records it
            bys.append(("segment",))
        res = _scan(log, bys, target, strict=False, study=study, want_cube=True)
        out = {}
        for by, table in zip(bys, res.summaries):
            table = table if table is not None else _summarise_sql(log, by, target)
            out[f"by_{'_'.join(by)}"] = _add_standards(table, by, study)
        cube = res.cube if res.cube is not None else _branch_hour_cube_sql(log, study, target)
        out["saturation"] = saturation(log, study, cube=cube)
        out["staffing"] = staffing(log, study, cube=cube)
        out["littles_law"] = littles_law(log, study, cube=cube)
        out["weekly"] = weekly_series(log, study, cube=cube)
        out["its"] = its_by_measure(log, study, weekly=out["weekly"])
        return out
    finally:
        if not isinstance(source, TicketLog):
            log.close()
