"""Validation of a quarter's raw data: schemas, row rules, quarantine, pseudonymisation, manifest.

A quarter supplies a survey (required) and, if the study declares them, process times and a
benchmark; a file for a source the study does not declare is refused, a declared source without a
file is reported as not supplied (``manifest["datasets_missing"]``). Each dataset has

* required columns — a missing one stops the run with a :class:`~study.errors.DataFileError`
  (exit code 2) naming the file, the columns and what to do;
* row rules, declared below as :class:`Rule` objects and run as a pandera schema in lazy mode,
  so every rule is checked on every row. A row that breaks any rule is *rejected*: it is written
  to ``data/processed/<QUARTER>/rejected_<dataset>.csv`` with its original values, the row
  a spreadsheet shows for it and the reasons; valid rows continue. Nothing is dropped silently:
  rows read = rows kept + rows rejected, and the manifest says so per reason. A dataset whose
  every row is rejected is a file-level error (exit 2, the top reasons), not an empty quarter.

Direct identifiers (``customer_id``, ``phone``, ``id_number``) and free text (``comment``) are
accepted on input and never written to processed data nor to the rejected-rows file (the raw
file, which is never modified, keeps them); columns the study does not declare are dropped from
every output and listed in the manifest (``undeclared_columns_dropped``). ``respondent_id`` and
``customer_id`` (and ``ticket_id``, ``request_id``) are replaced by keyed pseudonyms (HMAC-SHA256) in processed
data and in rejected rows; the key comes from the environment variable
``STUDY_PSEUDONYM_KEY`` or from ``<data-dir>/.study-key``, created on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata as md
import os
import platform
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from study.data import io, values
from study.data.config import DATASETS, IDENTIFYING_COLUMNS, SURVEY_COLUMNS, Study, effective_limits, file_sha256, quarter_bounds
from study.errors import DataFileError

# Durations beyond these are not plausible for a branch visit and indicate a clock or data-entry
# error (a ticket left open overnight, a wrong date). Documented in the report's data-quality appendix.
MAX_WAITING_MINUTES = 480.0
MAX_HANDLING_MINUTES = 240.0
PROCESS_TIMESTAMPS = ("issued_at", "called_at", "started_at", "finished_at")
PROCESS_COLUMNS = ("ticket_id", "branch_id", "business_type", "counter_id") + PROCESS_TIMESTAMPS + ("first_pass",)
BENCHMARK_COLUMNS = ("bank", "metric", "value")
# Service requests (contact centre, AI assistant, complaints): one row per contact. The columns below must be
# present; first_response_at, resolved_at and complaint_grade may be empty (no response yet, unresolved, not a
# complaint). Optional columns: branch_id, category, resolved_first_contact, post_contact_rating (read only when
# the study declares service_requests.rating_scale), customer_id (pseudonymised).
REQUEST_TIMESTAMPS = ("received_at", "first_response_at", "resolved_at")
REQUEST_COLUMNS = ("request_id", "channel") + REQUEST_TIMESTAMPS + ("handled_by", "escalated", "complaint_grade")
REQUEST_OPTIONAL = ("branch_id", "category", "resolved_first_contact", "post_contact_rating")
REQUEST_HANDLERS = ("ai", "human")
# A first response later than this, or a resolution later than that, is a clock or export error (a request
# still open is exported with an empty resolved_at, not with a date a year later).
MAX_RESPONSE_HOURS = 30 * 24.0
MAX_RESOLUTION_HOURS = 180 * 24.0
TRUE_WORDS = {"1", "true", "yes", "y", "t", "是"}
FALSE_WORDS = {"0", "false", "no", "n", "f", "否"}
KEY_ENV = "STUDY_PSEUDONYM_KEY"
KEY_FILE = ".study-key"


@dataclass(frozen=True)
class Rule:
    """One row rule. ``check`` gets the parsed frame (or one column) and returns True where a row passes."""

    reason: str
    description: str
    check: Callable
    column: str | None = None


@dataclass
class DatasetResult:
    dataset: str
    raw: io.RawTable
    kept: pd.DataFrame
    rejected: pd.DataFrame
    rejected_by_reason: dict[str, int]
    notes: list[str] = field(default_factory=list)
    undeclared_columns: list[str] = field(default_factory=list)  # dropped from every output

    @property
    def counts(self) -> dict:
        return {"read": len(self.raw.frame), "kept": len(self.kept), "rejected": len(self.rejected),
                "rejected_by_reason": dict(sorted(self.rejected_by_reason.items()))}


@dataclass
class QuarterResult:
    quarter: str
    datasets: dict[str, DatasetResult]
    manifest: dict
    not_supplied: list[str] = field(default_factory=list)  # declared by the study, no file this quarter

    def summary(self) -> pd.DataFrame:
        """Rows read, kept and rejected per dataset and reason, tidy."""
        rows = []
        for name, res in self.datasets.items():
            c = res.counts
            rows.append({"dataset": name, "reason": "(all rows)", "read": c["read"], "kept": c["kept"], "rejected": c["rejected"]})
            for reason, n in c["rejected_by_reason"].items():
                rows.append({"dataset": name, "reason": reason, "read": np.nan, "kept": np.nan, "rejected": n})
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Parsing helpers: text -> typed values, remembering which cells could not be parsed.


def _numeric(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    values = pd.to_numeric(text.str.strip(), errors="coerce").astype("float64")
    unparsable = text.notna() & values.isna()
    return values, unparsable


# A time of day followed by a UTC offset or Z: "2025-01-06T01:00:00Z", "2025-01-06 09:00+08:00".
# (A time is required, so a day-first date such as 06-01-2025 is never read as an offset.)
_WITH_OFFSET = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|(?:UTC|GMT)?[+-]\d{2}(?::?\d{2})?)$"


def _timestamp(text: pd.Series, timezone: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Parse timestamps to naive local time.

    Queue systems and surveys record local wall-clock time, which is what the analyses use
    (opening hours, peaks). A value with a UTC offset (``Z``, ``+08:00``; also what a tz-aware
    Parquet column becomes when read as text) is converted to the study's ``timezone`` and stored
    without the zone, like the others. A value that cannot be parsed is NaT and reported as
    unparsable (its row is rejected), never an error for the whole file.
    """
    clean = text.str.strip()
    aware = clean.str.contains(_WITH_OFFSET, regex=True).fillna(False).astype(bool)
    naive_text = clean.where(~aware) if aware.any() else clean
    try:
        values = pd.to_datetime(naive_text, errors="coerce", format="mixed")
        if isinstance(values.dtype, pd.DatetimeTZDtype):  # pandas found zones our pattern does not know
            raise ValueError("zone-aware values")
    except (ValueError, TypeError, OverflowError):
        values = pd.Series([_one_timestamp(v, timezone) for v in naive_text.tolist()], index=text.index,
                           dtype="datetime64[us]")
    if aware.any():
        zone = timezone or "UTC"
        converted = pd.Series([_one_timestamp(v, zone) for v in clean[aware].tolist()], index=clean.index[aware],
                              dtype="datetime64[us]")
        values = values.astype("datetime64[us]")
        values[aware] = converted
    unparsable = text.notna() & values.isna()
    return values, unparsable


def _one_timestamp(value, timezone: str | None):
    """One timestamp as naive local time (converted to ``timezone`` if it carries an offset), or NaT."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return pd.NaT
    try:
        ts = pd.Timestamp(str(value).replace("UTC", "").replace("GMT", "").strip())
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if ts is pd.NaT:
        return pd.NaT
    if ts.tzinfo is not None:
        try:
            ts = ts.tz_convert(timezone or "UTC").tz_localize(None)
        except (ValueError, TypeError, OverflowError):
            return pd.NaT
    return ts


def _boolean(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    low = text.str.strip().str.lower()
    values = pd.Series(pd.NA, index=text.index, dtype="boolean")
    values[low.isin(TRUE_WORDS).fillna(False)] = True
    values[low.isin(FALSE_WORDS).fillna(False)] = False
    unparsable = text.notna() & values.isna()
    return values, unparsable


def _is_whole(values: pd.Series) -> pd.Series:
    return values.isna() | (values == np.floor(values))


# ---------------------------------------------------------------------------------------------
# Rules per dataset


def _never(index) -> pd.Series:
    return pd.Series(False, index=index)


def _scan_text(raw: io.RawTable, columns) -> tuple[pd.DataFrame, dict[str, pd.Series], list[str]]:
    """The data text rule (:mod:`study.data.values`) on the columns a validator reads: invisible characters removed
    (one note per column), values holding a control or bidirectional character flagged (their rows are rejected by
    :func:`_text_rules`). Returns the cleaned text (the raw frame itself when nothing was removed), the flags, the notes."""
    text = raw.frame
    refused: dict[str, pd.Series] = {}
    scans = {}
    cleaned = {}
    for c in dict.fromkeys(columns):
        if c not in text.columns:
            continue
        sc = values.scan(text[c])
        scans[c] = sc
        if sc.removed:
            cleaned[c] = sc.text
        if sc.refused.any():
            refused[c] = sc.refused
    if cleaned:
        text = text.assign(**cleaned)
    return text, refused, values.count_removed(scans)


def _text_rules(refused: dict[str, pd.Series]) -> list[Rule]:
    """``control_character:<column>``: the value holds a C0/C1 control or a bidirectional formatting character."""
    def rule(c, bad):
        return Rule(f"{values.REASON}:{c}", f"{c} contains a control or text-direction character (shown escaped)",
                    lambda df: ~bad.reindex(df.index, fill_value=False))
    return [rule(c, bad) for c, bad in refused.items()]


def _required_rules(columns, unparsable: dict[str, pd.Series]) -> list[Rule]:
    # A cell whose text could not be parsed is reported as such, not as missing.
    def rule(c):
        bad = unparsable.get(c)
        return Rule("missing_value", f"{c} is empty",
                    lambda s: s.notna() | (bad.reindex(s.index, fill_value=False) if bad is not None else _never(s.index)),
                    column=c)
    return [rule(c) for c in columns]


def _parse_rules(unparsable: dict[str, pd.Series]) -> list[Rule]:
    def rule(c, bad):
        what = {"interview_date": "a date", "first_pass": "yes/no (1/0)", "escalated": "yes/no (1/0)",
                "resolved_first_contact": "yes/no (1/0)"}.get(
            c, "a timestamp" if c in PROCESS_TIMESTAMPS + REQUEST_TIMESTAMPS else "a number")
        return Rule("unparsable", f"{c} is not {what}", lambda s: ~bad.reindex(s.index, fill_value=False), column=c)
    return [rule(c, bad) for c, bad in unparsable.items()]


def _range_rules(columns, lo: float, hi: float) -> list[Rule]:
    return [Rule("out_of_range", f"{c} must be a whole number from {lo:g} to {hi:g}",
                 (lambda lo, hi: lambda s: s.isna() | (s.between(lo, hi) & _is_whole(s)))(lo, hi), column=c)
            for c in columns]


def _membership_rule(column: str, allowed: list[str], reason: str) -> Rule:
    allowed = list(allowed)
    return Rule(reason, f"{column} must be one of {allowed}", lambda s: s.isna() | s.isin(allowed), column=column)


def survey_rules(study: Study, quarter: str, unparsable: dict[str, pd.Series]) -> list[Rule]:
    q = study.questionnaire
    items = study.item_ids
    outcome_cols = [o.column for o in study.outcomes]
    first, last = quarter_bounds(quarter)
    rules = _required_rules(survey_columns(study) + items + outcome_cols, unparsable) + _parse_rules(unparsable)
    rules += _range_rules(items, q.scale.min, q.scale.max)
    for o in study.outcomes:
        rules += _range_rules([o.column], o.scale.min, o.scale.max)
    rules.append(_membership_rule("branch_id", study.branch_ids, "unknown_branch"))
    if study.segments:
        rules.append(_membership_rule("segment", [s.id for s in study.segments], "unknown_segment"))
    if study.channels:
        rules.append(_membership_rule("channel", [c.id for c in study.channels], "unknown_channel"))
    rules += [
        Rule("duplicate_id", "respondent_id already used by an earlier row (the first one is kept)",
             lambda s: s.isna() | ~s.duplicated(keep="first"), column="respondent_id"),
        Rule("date_outside_quarter", f"interview_date must fall in {quarter} ({first} to {last})",
             lambda s: s.isna() | s.between(pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1), inclusive="left"),
             column="interview_date"),
        Rule("straight_lining", f"the same answer to all {len(items)} items",
             lambda df: ~(df[items].notna().all(axis=1) & (df[items].nunique(axis=1) == 1))),
    ]
    return rules


def process_rules(study: Study, quarter: str, unparsable: dict[str, pd.Series], has_channel: bool,
                  has_segment: bool = False) -> list[Rule]:
    first, last = quarter_bounds(quarter)
    rules = _required_rules(PROCESS_COLUMNS, unparsable) + _parse_rules(unparsable)
    rules += [
        _membership_rule("branch_id", study.branch_ids, "unknown_branch"),
        _membership_rule("business_type", study.business_type_ids, "unknown_business_type"),
        Rule("duplicate_id", "ticket_id already used by an earlier row (the first one is kept)",
             lambda s: s.isna() | ~s.duplicated(keep="first"), column="ticket_id"),
        Rule("called_before_issued", "called_at is before issued_at",
             lambda df: ~(df["called_at"] < df["issued_at"])),
        Rule("started_before_called", "started_at is before called_at",
             lambda df: ~(df["started_at"] < df["called_at"])),
        Rule("finished_before_started", "finished_at is before started_at",
             lambda df: ~(df["finished_at"] < df["started_at"])),
        Rule("absurd_waiting", f"waiting time over {MAX_WAITING_MINUTES:g} minutes",
             lambda df: ~((df["called_at"] - df["issued_at"]).dt.total_seconds() / 60 > MAX_WAITING_MINUTES)),
        Rule("absurd_handling", f"handling time over {MAX_HANDLING_MINUTES:g} minutes",
             lambda df: ~((df["finished_at"] - df["started_at"]).dt.total_seconds() / 60 > MAX_HANDLING_MINUTES)),
        Rule("date_outside_quarter", f"issued_at must fall in {quarter} ({first} to {last})",
             lambda s: s.isna() | s.between(pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1), inclusive="left"),
             column="issued_at"),
    ]
    if has_channel and study.ticket_channels:
        rules.append(_membership_rule("channel", [c.id for c in study.ticket_channels], "unknown_channel"))
    if has_segment:
        rules.append(_membership_rule("segment", [s.id for s in study.segments], "unknown_segment"))
    return rules


def request_rules(study: Study, quarter: str, unparsable: dict[str, pd.Series], optional: set[str]) -> list[Rule]:
    """Row rules of the service-request log (as for tickets: order of timestamps, absurd durations, unknown
    ids, duplicates, dates outside the quarter)."""
    sr = study.service_requests
    first, last = quarter_bounds(quarter)
    hours = lambda df, a, b: (df[b] - df[a]).dt.total_seconds() / 3600  # noqa: E731
    rules = _required_rules(("request_id", "channel", "received_at", "handled_by", "escalated"), unparsable)
    rules += _parse_rules(unparsable)
    rules += [
        _membership_rule("channel", [c.id for c in sr.channels], "unknown_channel"),
        _membership_rule("handled_by", list(REQUEST_HANDLERS), "unknown_handler"),
        _membership_rule("complaint_grade", [g.id for g in sr.complaint_grades], "unknown_grade"),
        Rule("duplicate_id", "request_id already used by an earlier row (the first one is kept)",
             lambda s: s.isna() | ~s.duplicated(keep="first"), column="request_id"),
        Rule("responded_before_received", "first_response_at is before received_at",
             lambda df: ~(df["first_response_at"] < df["received_at"])),
        Rule("resolved_before_received", "resolved_at is before received_at",
             lambda df: ~(df["resolved_at"] < df["received_at"])),
        Rule("resolved_before_response", "resolved_at is before first_response_at",
             lambda df: ~(df["resolved_at"] < df["first_response_at"])),
        Rule("absurd_response", f"first response more than {MAX_RESPONSE_HOURS / 24:g} days after receipt",
             lambda df: ~(hours(df, "received_at", "first_response_at") > MAX_RESPONSE_HOURS)),
        Rule("absurd_resolution", f"resolution more than {MAX_RESOLUTION_HOURS / 24:g} days after receipt",
             lambda df: ~(hours(df, "received_at", "resolved_at") > MAX_RESOLUTION_HOURS)),
        Rule("escalated_but_ai", "escalated (handed from the AI to a human) but handled_by is ai",
             lambda df: ~(df["escalated"].fillna(False).astype(bool) & df["handled_by"].eq("ai").fillna(False).astype(bool))),
        Rule("date_outside_quarter", f"received_at must fall in {quarter} ({first} to {last})",
             lambda s: s.isna() | s.between(pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1), inclusive="left"),
             column="received_at"),
    ]
    if "branch_id" in optional:
        rules.append(_membership_rule("branch_id", study.branch_ids, "unknown_branch"))
    if "post_contact_rating" in optional:
        rules += _range_rules(["post_contact_rating"], sr.rating_scale.min, sr.rating_scale.max)
    return rules


def survey_columns(study: Study) -> list[str]:
    """The fixed survey columns this study needs: ``segment`` and ``channel`` only when declared."""
    return [c for c in SURVEY_COLUMNS
            if not (c == "segment" and not study.segments) and not (c == "channel" and not study.channels)]


def benchmark_rules(study: Study, unparsable: dict[str, pd.Series]) -> list[Rule]:
    metrics = [m.id for m in study.benchmark.metrics]
    rules = _required_rules(BENCHMARK_COLUMNS, unparsable) + _parse_rules(unparsable)
    limit = study.limits.bounds["max_benchmark_value"]
    rules += [
        Rule("implausible_value", f"value beyond ±{limit:,.0f} or not finite (limits.max_benchmark_value)",
             lambda s: s.isna() | (s.abs() <= limit), column="value"),
        _membership_rule("metric", metrics, "unknown_metric"),
        Rule("duplicate_entry", "the same bank and metric appear in an earlier row (the first one is kept)",
             lambda df: ~df.duplicated(["bank", "metric"], keep="first") | df["bank"].isna() | df["metric"].isna()),
    ]
    return rules


def apply_rules(frame: pd.DataFrame, rules: list[Rule]) -> pd.Series:
    """Run the rules as one lazy pandera schema; return, per row, the reasons it was rejected ('' if none)."""
    columns: dict[str, list[pa.Check]] = {}
    frame_checks: list[pa.Check] = []
    for rule in rules:
        check = pa.Check(rule.check, name=rule.reason, ignore_na=False)
        if rule.column is None:
            frame_checks.append(check)
        else:
            columns.setdefault(rule.column, []).append(check)
    schema = pa.DataFrameSchema({c: pa.Column(checks=ch, nullable=True) for c, ch in columns.items()},
                                checks=frame_checks)
    reasons = pd.Series("", index=frame.index, dtype=object)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        if fc["index"].isna().any():  # a rule that does not return one verdict per row is a bug
            broken = sorted(set(fc.loc[fc["index"].isna(), "check"].astype(str)))
            raise RuntimeError(f"row rule(s) {broken} did not return a per-row result") from None
        codes = fc["check"].astype(str)
        col = fc["column"].astype(str)
        is_col = fc["schema_context"] == "Column"
        label = np.where(is_col, codes + ":" + col, codes)
        found = (pd.DataFrame({"index": fc["index"].astype(int), "label": label})
                 .drop_duplicates().sort_values(["index", "label"]))
        joined = found.groupby("index")["label"].agg("; ".join)
        reasons.loc[joined.index] = joined
    return reasons


# ---------------------------------------------------------------------------------------------
# Pseudonymisation


def pseudonym_key(data_dir: Path) -> tuple[bytes, str]:
    """The pseudonymisation key and where it came from ('environment' or the key file path)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode("utf-8"), f"environment variable {KEY_ENV}"
    path = Path(data_dir) / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode("utf-8"), str(path)


def pseudonymise(values: pd.Series, key: bytes, namespace: str) -> pd.Series:
    """Keyed hash (HMAC-SHA256, first 20 hex digits) of each value; missing stays missing."""
    def one(v):
        if pd.isna(v):
            return pd.NA
        return hmac.new(key, f"{namespace}:{v}".encode("utf-8"), hashlib.sha256).hexdigest()[:20]
    return pd.array([one(v) for v in values.tolist()], dtype="string")


# ---------------------------------------------------------------------------------------------
# Per-dataset validation


def _require_columns(raw: io.RawTable, required, dataset: str) -> None:
    missing = [c for c in required if c not in raw.frame.columns]
    if missing:
        present = ", ".join(raw.frame.columns[:12]) + (" ..." if raw.frame.shape[1] > 12 else "")
        raise DataFileError(f"{raw.path}: required column(s) missing: {', '.join(missing)}. "
                            f"The {dataset} file must have a header row with these names (found: {present}).")


# Identifier columns written to rejected files as keyed pseudonyms (the same as in processed data).
PSEUDONYMISED = {"respondent_id": ("respondent_pid", "respondent"), "ticket_id": ("ticket_pid", "ticket"),
                 "customer_id": ("customer_pid", "customer"), "request_id": ("request_pid", "request")}


def _rejected_frame(raw: io.RawTable, reasons: pd.Series, declared: list[str], key: bytes) -> pd.DataFrame:
    """The rejected rows: spreadsheet row, pseudonymised ids, the declared columns as written, reasons.

    Identifiers are replaced by the keyed pseudonyms the processed data use (so a rejected
    duplicate can be matched to the row that was kept); direct identifiers, free text and columns
    the study does not declare are not written.
    """
    bad = (reasons != "").to_numpy()
    text = raw.frame.loc[bad]
    out = pd.DataFrame({"source_row": np.asarray(raw.source_rows, dtype="int64")[bad]})
    for col, (pid, namespace) in PSEUDONYMISED.items():
        if col in text.columns:
            out[pid] = pseudonymise(text[col].str.strip(), key, namespace)
    for c in declared:
        if c in text.columns and c not in PSEUDONYMISED and c not in IDENTIFYING_COLUMNS:
            out[c] = text[c].to_numpy()
    out["reason"] = reasons[bad].to_numpy()
    return out.reset_index(drop=True)


def _count_reasons(reasons: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in reasons[reasons != ""]:
        for code in {part.split(":")[0] for part in r.split("; ")}:
            counts[code] = counts.get(code, 0) + 1
    return counts


def _refuse_if_all_rejected(raw: io.RawTable, reasons: pd.Series, dataset: str, quarter: str) -> None:
    """A dataset whose every row is rejected is a file-level error, not an empty quarter.

    An empty processed survey would only fail later, in the report, with a message about too few
    rows; the cause is almost always one systematic mismatch (a wrong scale, a column of the
    wrong type, branch codes spelt differently, the wrong quarter's file), which the top reasons show.
    """
    if len(reasons) == 0 or (reasons == "").any():
        return
    labels = pd.Series([part for r in reasons for part in r.split("; ")]).value_counts()
    top = labels.head(3)
    shown = ", ".join(f"{label} ({n:,} rows)" for label, n in top.items())
    raise DataFileError(f"{raw.path}: all {len(reasons):,} rows were rejected, so {quarter} would have no {dataset} data. "
                        f"Top reasons: {shown}. Check the file against study.yml (column names, scales, ids, the "
                        f"quarter's dates) and fix the export; nothing was written for {quarter}.")


def _undeclared(raw: io.RawTable, declared: set[str]) -> list[str]:
    return [c for c in raw.frame.columns if c not in declared and c not in IDENTIFYING_COLUMNS]


def validate_survey(study: Study, raw: io.RawTable, quarter: str, key: bytes) -> DatasetResult:
    items = study.item_ids
    outcomes = [o.column for o in study.outcomes]
    fixed = survey_columns(study)
    # the survey's design weight, when study.yml sampling names one (issue 13)
    weight = [study.sampling.weight] if study.sampling is not None and study.sampling.weight else []
    _require_columns(raw, fixed + items + outcomes + weight, "survey")
    text, refused, text_notes = _scan_text(raw, fixed + items + outcomes + weight + ["customer_id"])
    parsed = pd.DataFrame(index=text.index)
    unparsable: dict[str, pd.Series] = {}
    labels = [c for c in ("respondent_id", "branch_id", "segment", "channel") if c in fixed]
    for c in labels:
        parsed[c] = text[c].str.strip()
    parsed["interview_date"], bad = _timestamp(text["interview_date"], study.timezone)
    if bad.any():
        unparsable["interview_date"] = bad
    for c in items + outcomes:
        parsed[c], bad = _numeric(text[c])
        if bad.any():
            unparsable[c] = bad
    for c in weight:
        parsed[c], _ = _numeric(text[c])
    reasons = apply_rules(parsed, survey_rules(study, quarter, unparsable) + _text_rules(refused))
    for c in weight:   # a respondent without a positive (finite) weight cannot stand for anyone
        bad_w = (reasons == "") & ~(parsed[c].between(0, np.inf, inclusive="neither"))
        reasons = reasons.mask(bad_w, f"invalid_weight:{c}")
    _refuse_if_all_rejected(raw, reasons, "survey", quarter)
    ok = reasons == ""
    kept = pd.DataFrame({"respondent_pid": pseudonymise(parsed.loc[ok, "respondent_id"], key, "respondent")})
    if "customer_id" in text.columns:
        kept["customer_pid"] = pseudonymise(text.loc[ok, "customer_id"].str.strip(), key, "customer")
    for c in labels[1:]:
        kept[c] = pd.array(parsed.loc[ok, c].tolist(), dtype="string")
    kept["interview_date"] = parsed.loc[ok, "interview_date"].dt.normalize().astype("datetime64[us]").to_numpy()
    for c in items + outcomes:
        kept[c] = parsed.loc[ok, c].astype("int8").to_numpy()
    for c in weight:
        kept[c] = parsed.loc[ok, c].astype("float64").to_numpy()
    declared = fixed + items + outcomes + weight
    undeclared = _undeclared(raw, set(declared))
    return DatasetResult("survey", raw, kept.reset_index(drop=True), _rejected_frame(raw, reasons, declared, key),
                         _count_reasons(reasons), _column_notes(raw, undeclared) + text_notes, undeclared)


def validate_process(study: Study, raw: io.RawTable, quarter: str, key: bytes) -> DatasetResult:
    _require_columns(raw, PROCESS_COLUMNS, "process_times")
    text, refused, text_notes = _scan_text(raw, PROCESS_COLUMNS + ("channel", "segment", "customer_id"))
    has_channel = "channel" in text.columns
    has_segment = "segment" in text.columns and bool(study.segments)   # optional: the customer segment of a ticket
    parsed = pd.DataFrame(index=text.index)
    unparsable: dict[str, pd.Series] = {}
    for c in ("ticket_id", "branch_id", "business_type", "counter_id") + (("channel",) if has_channel else ()) \
            + (("segment",) if has_segment else ()):
        parsed[c] = text[c].str.strip()
    for c in PROCESS_TIMESTAMPS:
        parsed[c], bad = _timestamp(text[c], study.timezone)
        if bad.any():
            unparsable[c] = bad
    parsed["first_pass"], bad = _boolean(text["first_pass"])
    if bad.any():
        unparsable["first_pass"] = bad
    reasons = apply_rules(parsed, process_rules(study, quarter, unparsable, has_channel, has_segment) + _text_rules(refused))
    _refuse_if_all_rejected(raw, reasons, "process_times", quarter)
    ok = reasons == ""
    p = parsed.loc[ok]
    # ticket_id is an identifier too (a queue system can link it to the customer's record): a keyed pseudonym,
    # the same as in the rejected rows, so a rejected duplicate can be matched to the ticket that was kept
    kept = pd.DataFrame({"ticket_pid": pseudonymise(p["ticket_id"], key, "ticket")})
    for c in ("branch_id", "business_type", "counter_id"):
        kept[c] = pd.array(p[c].tolist(), dtype="string")
    kept["channel"] = pd.array(p["channel"].tolist() if has_channel else [pd.NA] * len(p), dtype="string")
    if has_segment:
        kept["segment"] = pd.array(p["segment"].tolist(), dtype="string")
    for c in PROCESS_TIMESTAMPS:
        kept[c] = p[c].astype("datetime64[us]").to_numpy()
    kept["first_pass"] = p["first_pass"].astype(bool).to_numpy()
    minutes = lambda a, b: ((kept[b] - kept[a]).dt.total_seconds() / 60.0).astype("float64")  # noqa: E731
    kept["waiting_minutes"] = minutes("issued_at", "called_at")
    kept["handling_minutes"] = minutes("started_at", "finished_at")
    kept["cycle_minutes"] = minutes("issued_at", "finished_at")
    if "customer_id" in text.columns:
        kept["customer_pid"] = pseudonymise(text.loc[ok, "customer_id"].str.strip(), key, "customer")
    declared = list(PROCESS_COLUMNS) + ["channel"] + (["segment"] if has_segment else [])
    undeclared = _undeclared(raw, set(declared))
    return DatasetResult("process_times", raw, kept, _rejected_frame(raw, reasons, declared, key), _count_reasons(reasons),
                         _column_notes(raw, undeclared) + text_notes, undeclared)


def validate_benchmark(study: Study, raw: io.RawTable, quarter: str, key: bytes) -> DatasetResult:
    _require_columns(raw, BENCHMARK_COLUMNS, "benchmark")
    text, refused, text_notes = _scan_text(raw, BENCHMARK_COLUMNS)
    parsed = pd.DataFrame({"bank": text["bank"].str.strip(), "metric": text["metric"].str.strip()})
    parsed["value"], bad = _numeric(text["value"])
    reasons = apply_rules(parsed, benchmark_rules(study, {"value": bad} if bad.any() else {}) + _text_rules(refused))
    _refuse_if_all_rejected(raw, reasons, "benchmark", quarter)
    ok = reasons == ""
    kept = pd.DataFrame({"bank": pd.array(parsed.loc[ok, "bank"].tolist(), dtype="string"),
                         "metric": pd.array(parsed.loc[ok, "metric"].tolist(), dtype="string"),
                         "value": parsed.loc[ok, "value"].to_numpy()})
    ours = study.benchmark.our_bank
    if not (kept["bank"] == ours).any():
        raise DataFileError(f"{raw.path}: no valid rows for our bank '{ours}' (the name set in study.yml under benchmark.our_bank). "
                            "Check the spelling of the bank column or of benchmark.our_bank.")
    declared = list(BENCHMARK_COLUMNS)
    undeclared = _undeclared(raw, set(declared))
    return DatasetResult("benchmark", raw, kept, _rejected_frame(raw, reasons, declared, key), _count_reasons(reasons),
                         _column_notes(raw, undeclared) + text_notes, undeclared)


def request_optional_columns(study: Study, columns) -> set[str]:
    """The optional request columns present in a file that the study lets through (the rating needs a scale)."""
    out = {c for c in REQUEST_OPTIONAL if c in columns}
    if study.service_requests.rating_scale is None:
        out.discard("post_contact_rating")
    return out


def validate_requests(study: Study, raw: io.RawTable, quarter: str, key: bytes) -> DatasetResult:
    """The service-request log: parsed, checked row by row, pseudonymised (request_id and customer_id).

    Kept columns (every one present whatever the file supplies, so quarters line up): ``request_pid,
    customer_pid, branch_id, channel, received_at, first_response_at, resolved_at, handled_by, escalated,
    category, complaint_grade, resolved_first_contact, post_contact_rating`` and the derived
    ``first_response_minutes`` (first_response_at - received_at) and ``resolution_minutes``
    (resolved_at - received_at), missing where the timestamp is empty.
    """
    _require_columns(raw, REQUEST_COLUMNS, "service_requests")
    optional = request_optional_columns(study, raw.frame.columns)
    text, refused, text_notes = _scan_text(raw, REQUEST_COLUMNS + tuple(sorted(optional)) + ("customer_id",))
    parsed = pd.DataFrame(index=text.index)
    unparsable: dict[str, pd.Series] = {}
    for c in ("request_id", "channel", "complaint_grade") + tuple(c for c in ("branch_id", "category") if c in optional):
        parsed[c] = text[c].str.strip()
    parsed["handled_by"] = text["handled_by"].str.strip().str.lower()
    for c in REQUEST_TIMESTAMPS:
        parsed[c], bad = _timestamp(text[c], study.timezone)
        if bad.any():
            unparsable[c] = bad
    for c in ("escalated",) + (("resolved_first_contact",) if "resolved_first_contact" in optional else ()):
        parsed[c], bad = _boolean(text[c])
        if bad.any():
            unparsable[c] = bad
    if "post_contact_rating" in optional:
        parsed["post_contact_rating"], bad = _numeric(text["post_contact_rating"])
        if bad.any():
            unparsable["post_contact_rating"] = bad
    reasons = apply_rules(parsed, request_rules(study, quarter, unparsable, optional) + _text_rules(refused))
    _refuse_if_all_rejected(raw, reasons, "service_requests", quarter)
    ok = reasons == ""
    p = parsed.loc[ok]
    n = len(p)
    empty = [pd.NA] * n
    kept = pd.DataFrame({"request_pid": pseudonymise(p["request_id"], key, "request")})
    kept["customer_pid"] = (pseudonymise(text.loc[ok, "customer_id"].str.strip(), key, "customer")
                            if "customer_id" in text.columns else pd.array(empty, dtype="string"))
    for c in ("branch_id", "channel"):
        kept[c] = pd.array(p[c].tolist() if c in p.columns else empty, dtype="string")
    for c in REQUEST_TIMESTAMPS:
        kept[c] = p[c].astype("datetime64[us]").to_numpy()
    kept["handled_by"] = pd.array(p["handled_by"].tolist(), dtype="string")
    kept["escalated"] = p["escalated"].astype(bool).to_numpy()
    for c in ("category", "complaint_grade"):
        kept[c] = pd.array(p[c].tolist() if c in p.columns else empty, dtype="string")
    kept["resolved_first_contact"] = pd.array(p["resolved_first_contact"].tolist() if "resolved_first_contact" in p.columns
                                              else empty, dtype="boolean")
    kept["post_contact_rating"] = (p["post_contact_rating"].astype("float64").to_numpy() if "post_contact_rating" in p.columns
                                   else np.full(n, np.nan))
    minutes = lambda a, b: ((kept[b] - kept[a]).dt.total_seconds() / 60.0).astype("float64")  # noqa: E731
    kept["first_response_minutes"] = minutes("received_at", "first_response_at")
    kept["resolution_minutes"] = minutes("received_at", "resolved_at")
    declared = list(REQUEST_COLUMNS) + sorted(optional)
    undeclared = _undeclared(raw, set(declared))
    return DatasetResult("service_requests", raw, kept.reset_index(drop=True), _rejected_frame(raw, reasons, declared, key),
                         _count_reasons(reasons), _column_notes(raw, undeclared) + text_notes, undeclared)


def _column_notes(raw: io.RawTable, undeclared: list[str]) -> list[str]:
    notes = list(raw.notes)
    if undeclared:
        notes.append("columns not in the study definition were dropped from every output (processed data and "
                      f"rejected rows): {', '.join(undeclared)}")
    return notes


VALIDATORS = {"survey": validate_survey, "process_times": validate_process, "benchmark": validate_benchmark,
              "service_requests": validate_requests}
REQUIRED = {"survey": None, "process_times": PROCESS_COLUMNS, "benchmark": BENCHMARK_COLUMNS,
            "service_requests": REQUEST_COLUMNS}


def declared_sections(study: Study, dataset: str) -> list[str]:
    """The study.yml sections a dataset needs that this study does not declare ([] when it may be read)."""
    if dataset == "process_times":
        return [k for k, v in (("business_types", study.business_types), ("service_level", study.service_level)) if not v]
    if dataset == "benchmark":
        return [] if study.has_benchmark else ["benchmark"]
    if dataset == "service_requests":
        return [] if study.has_requests else ["service_requests"]
    return []


# ---------------------------------------------------------------------------------------------
# A whole quarter


def package_versions() -> dict[str, str]:
    names = ["study", "pandas", "numpy", "pyarrow", "pandera", "pydantic", "scipy", "statsmodels",
             "duckdb", "matplotlib", "papermill", "nbconvert"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = "not installed"
    return out


def validate_quarter(study: Study, study_path: Path, data_dir: Path, quarter: str,
                     progress: Callable[[str], None] | None = None) -> QuarterResult:
    """Read and validate every dataset a quarter supplies; nothing is written (except the
    pseudonymisation key file, on first use).

    The survey is required. Process times and the benchmark are read when their file is present;
    a file for a source the study does not declare is an error (its rows could not be checked),
    a declared source without a file is noted as not supplied.
    """
    data_dir = Path(data_dir)
    rdir = io.raw_dir(data_dir, quarter)
    limits = effective_limits(study)
    found = {d: io.find_dataset_file(rdir, d, required=(d == "survey")) for d in DATASETS}
    for dataset, path in found.items():
        missing = declared_sections(study, dataset) if path is not None else []
        if missing:
            raise DataFileError(f"{path}: a {dataset} file is present, but study.yml does not declare "
                                f"{' and '.join(missing)}, which its rows are checked against. Add "
                                f"{'these sections' if len(missing) > 1 else 'that section'} to the study definition, "
                                "or move the file out of the quarter's folder.")
    key, key_source = pseudonym_key(data_dir)
    results: dict[str, DatasetResult] = {}
    inputs = {}
    for dataset, path in found.items():
        if path is None:
            continue
        if progress:
            progress(f"{quarter}: reading {path.name}")
        required = survey_columns(study) + study.item_ids if dataset == "survey" else REQUIRED[dataset]
        raw = io.read_raw(path, required=required, limits=limits)
        if progress:
            progress(f"{quarter}: validating {len(raw.frame):,} {dataset} rows")
        results[dataset] = VALIDATORS[dataset](study, raw, quarter, key)
        inputs[dataset] = {"file": path.name, "sha256": file_sha256(path), "bytes": path.stat().st_size,
                           "format": raw.format, "encoding": raw.encoding, "header_row": raw.header_row}
    _check_sampling_sizes(study, quarter, results)
    for res in results.values():
        res.notes += values.glyph_notes(text_values(res.kept))
    # A study without a request log is described exactly as before the log existed (it is not "missing").
    absent = [d for d in DATASETS if found[d] is None and (d != "service_requests" or study.has_requests)]
    manifest = {
        "quarter": quarter,
        "study_file": Path(study_path).name,
        "study_sha256": file_sha256(study_path),
        "inputs": inputs,
        "rows": {d: r.counts for d, r in results.items()},
        "datasets_missing": absent,
        "undeclared_columns_dropped": {d: r.undeclared_columns for d, r in results.items()},
        "notes": {d: r.notes for d, r in results.items() if r.notes},
        "rules": {"max_waiting_minutes": MAX_WAITING_MINUTES, "max_handling_minutes": MAX_HANDLING_MINUTES,
                  "timezone": study.timezone,
                  **({"max_response_hours": MAX_RESPONSE_HOURS, "max_resolution_hours": MAX_RESOLUTION_HOURS}
                     if study.has_requests else {})},
        "pseudonymisation": {"method": "HMAC-SHA256, first 20 hex digits",
                             "key_fingerprint": hashlib.sha256(key).hexdigest()[:12]},
        "packages": package_versions(),
    }
    not_supplied = [d for d in absent if not declared_sections(study, d)]
    return QuarterResult(quarter, results, manifest, not_supplied)


def text_values(kept: pd.DataFrame) -> dict[str, list]:
    """The distinct values of a processed frame's text columns that can reach the report (pseudonyms excluded)."""
    return {c: kept[c].dropna().unique().tolist() for c in kept.columns
            if not c.endswith("_pid") and (pd.api.types.is_string_dtype(kept[c].dtype) or kept[c].dtype == object)}


def _check_sampling_sizes(study: Study, quarter: str, results: dict[str, DatasetResult]) -> None:
    """Every stratum with respondents has a population size for the quarter, at least its number of respondents.

    Checked here, where the quarter's data are read, so that a study.yml that cannot weight this quarter stops
    ``validate``/``prepare`` with the key to fix, instead of every chapter of the report later. The sizes are those
    :func:`study.stats.design.population_sizes` uses (study.yml ``population`` overridden by ``population_by_quarter``, or
    the queue log's ticket counts per branch)."""
    sp = study.sampling
    if sp is None or sp.strata is None or "survey" not in results:
        return
    survey = results["survey"]
    n_h = survey.kept[sp.strata].astype(str).value_counts()
    if sp.population_source == "process_times":
        tickets = results.get("process_times")
        if tickets is None:
            raise DataFileError(f"{survey.raw.path}: study.yml sampling.population_source is process_times, but {quarter} "
                                "has no process_times file to count each branch's tickets in. Supply the queue log "
                                "or give sampling.population sizes.")
        pop = {str(k): float(v) for k, v in tickets.kept["branch_id"].value_counts().items()}
        where = f"the {quarter} queue log"
    else:
        pop = {**{k: float(v) for k, v in sp.population.items()},
               **{k: float(v) for k, v in sp.population_by_quarter.get(quarter, {}).items()}}
        where = (f"study.yml sampling.population_by_quarter.{quarter}" if quarter in sp.population_by_quarter
                 else "study.yml sampling.population" if sp.population
                 else f"study.yml sampling (no population, no population_by_quarter.{quarter})")
    missing = [h for h in n_h.index if h not in pop]
    if missing:
        raise DataFileError(f"{survey.raw.path}: {', '.join(f'{h} ({n_h[h]:,} respondents)' for h in missing)} "
                            f"{'is a stratum' if len(missing) == 1 else 'are strata'} ({sp.strata}) without a population "
                            f"size in {where}, so {quarter}'s survey cannot be weighted. Add "
                            f"{'its size' if len(missing) == 1 else 'their sizes'} to study.yml sampling; nothing was written "
                            f"for {quarter}.")
    small = [h for h in n_h.index if pop[h] < n_h[h]]
    if small:
        raise DataFileError(f"{survey.raw.path}: "
                            + ", ".join(f"{h} has {n_h[h]:,} respondents but a population size of {pop[h]:,g}" for h in small)
                            + f" (in {where}); a stratum's population cannot be smaller than its sample. Correct the sizes "
                            f"in study.yml sampling; nothing was written for {quarter}.")


def _owned(name: str) -> bool:
    """Whether ``name`` in a processed quarter folder is written by :func:`prepare_quarter`."""
    return name == "manifest.json" or any(name in (f"{d}.parquet", f"rejected_{d}.csv") for d in DATASETS)


def prepare_quarter(study: Study, study_path: Path, data_dir: Path, quarter: str,
                    progress: Callable[[str], None] | None = None) -> QuarterResult:
    """Validate a quarter and write processed Parquet, rejected rows and the manifest, as one unit.

    The quarter is built in a temporary sibling folder and swapped in by rename
    (:func:`study.data.io.quarter_folder`), so a killed run leaves the previous quarter whole. The
    manifest records the sha256 of every output (``checksums``); :func:`study.data.io.load_quarter`
    refuses a folder that does not match it.
    """
    result = validate_quarter(study, study_path, data_dir, quarter, progress)
    outputs, checksums = {}, {}
    with io.quarter_folder(io.processed_dir(data_dir, quarter), _owned) as out:
        for dataset, res in result.datasets.items():
            if progress:
                progress(f"{quarter}: writing {dataset} ({len(res.kept):,} kept, {len(res.rejected):,} rejected)")
            target = out / f"{dataset}.parquet"
            io.write_parquet(res.kept, target)
            rejected_path = out / f"rejected_{dataset}.csv"
            io.write_csv(res.rejected, rejected_path)
            checksums[target.name] = file_sha256(target)
            checksums[rejected_path.name] = file_sha256(rejected_path)
            outputs[dataset] = {"file": target.name, "sha256": checksums[target.name], "rows": len(res.kept),
                                "rejected_file": rejected_path.name, "rejected_sha256": checksums[rejected_path.name]}
        result.manifest["outputs"] = outputs
        result.manifest["checksums"] = checksums
        io.write_json(result.manifest, out / "manifest.json")
    return result
