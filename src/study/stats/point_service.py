"""The point-to-point service plan's targets (seed §5) that need neither the survey nor the request log: channel
coverage and customer-information accuracy.

**Channel coverage** ("communication-channel coverage >= 90 %"): the share of the units a plan must reach that a
service channel covers, per quarter, from the counts the study supplies in study.yml (``channel_coverage``:
``covered`` of ``total`` units, e.g. target areas with a service point, or customers reachable through at least
one channel). Two cases, said by ``channel_coverage.census``:

* **census** (the default): the counts are complete -- every unit was checked. The share is then a fact, not an
  estimate: it has no sampling error, so it gets no interval and a target on it is decided by the share itself
  (met when it is on the target's side of the threshold, else not met; never "not distinguishable").
* **sample** (``census: false``): the counts come from a random sample or audit of the units. The share then
  estimates the coverage of all units, with a Wilson score interval (R ``prop.test(x, n, correct = FALSE)``), and
  the interval decides the target like every proportion target of the toolkit (met / not met / not
  distinguishable).

**Customer-information accuracy** ("customer-information accuracy >= 95 %"): the share of the queue log's tickets
of the information-verification business type the study names (``information_accuracy.business_type``) whose
``first_pass`` is true -- the records verified without a correction or a second visit -- over the tickets of that
type with a recorded ``first_pass``; counted by DuckDB over the processed log, Wilson score interval, decided by
the interval. The tickets are the quarter's verifications (a sample of the customer base's records, not all of
them), so the share is an estimate.

Statistics only: dicts and DataFrames in the columns of :func:`study.stats.requests.target_attainment`, no prose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study.data.config import Study
from study.i18n import NP_
from study.stats.requests import TARGET_COLUMNS, interval_verdict, wilson


def level(study: Study, quarter: str, conf: float = 0.95) -> dict | None:
    """The quarter's coverage: covered, total, share, census and (for a sample) the Wilson interval; None when the
    study declares no channel coverage. A quarter without counts has ``total`` 0 and no share."""
    cov = study.channel_coverage
    if cov is None:
        return None
    c = cov.quarters.get(quarter)
    out = {"quarter": quarter, "unit": cov.unit, "census": cov.census, "covered": 0, "total": 0, "share": np.nan,
           "ci_low": np.nan, "ci_high": np.nan}
    if c is None:
        return out
    out.update(covered=c.covered, total=c.total, share=c.covered / c.total)
    if not cov.census:
        _, out["ci_low"], out["ci_high"] = wilson(c.covered, c.total, conf)
    return out


def verdict(share: float, low: float, high: float, census: bool, operator: str, value: float) -> str:
    """met / not met for a census (the share itself against the threshold); the interval's verdict for a sample
    (:func:`study.stats.requests.interval_verdict`)."""
    if not census:
        return interval_verdict(low, high, operator, value)
    ok = share >= value if operator == ">=" else share <= value
    return NP_("cell", "met") if ok else NP_("cell", "not met")


def accuracy(source, study: Study, conf: float = 0.95) -> dict | None:
    """Customer-information accuracy of one quarter's processed ticket log (Parquet path/list/folder or DataFrame):
    tickets of the named business type with a recorded first pass (``n``), those that passed (``passed``), the share
    and its Wilson interval, and the type's tickets with or without a first pass (``tickets``); None when the study
    declares no information accuracy."""
    from study.stats import process as proc

    acc = study.information_accuracy
    if acc is None:
        return None
    log = proc.open_log(source)
    try:
        where = f"WHERE CAST(business_type AS VARCHAR) = {proc.sql_list([acc.business_type])}"
        tickets = log.sql(f"SELECT count(*) FROM {log.view} {where}").fetchall()[0][0]
        if "first_pass" not in log.columns:
            n = passed = 0
        else:
            n, passed = log.sql(f"""SELECT count(first_pass), coalesce(sum(CAST(first_pass AS INTEGER)), 0) FROM {log.view}
                                    {where}""").fetchall()[0]
    finally:
        if not isinstance(source, proc.TicketLog):
            log.close()
    share, lo, hi = wilson(int(passed), int(n), conf)
    return {"business_type": acc.business_type, "n": int(n), "passed": int(passed), "share": share, "ci_low": lo,
            "ci_high": hi, "tickets": int(tickets)}


def point_service(study: Study, quarter: str, process_source=None, conf: float = 0.95) -> dict | None:
    """Coverage (:func:`level`), accuracy (:func:`accuracy`, None without a ticket log this quarter) and the rows of
    their level targets (:func:`target_attainment`); None when the study declares neither."""
    if study.channel_coverage is None and study.information_accuracy is None:
        return None
    cov = level(study, quarter, conf)
    acc = accuracy(process_source, study, conf) if process_source is not None else None
    return {"coverage": cov, "accuracy": acc, "targets": target_attainment(study, cov, acc)}


def target_attainment(study: Study, cov: dict | None, acc: dict | None) -> pd.DataFrame:
    """The study's level targets on ``channel_coverage`` (from :func:`level`) and ``information_accuracy`` (from
    :func:`accuracy`), in the columns and words of :func:`study.stats.requests.target_attainment`: a quarter without
    coverage counts or without tickets of the verification type is "not measured". Change targets on information
    accuracy are left to :func:`study.stats.effects.target_attainment` (per-ticket values)."""
    rows = []
    for t in study.targets:
        if t.metric == "information_accuracy" and t.kind == "level" and acc is not None:
            row = {"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
                   "target_value": t.value, "observed": acc["share"], "ci_low": acc["ci_low"], "ci_high": acc["ci_high"],
                   "note": ""}
            if not acc["n"] and acc.get("tickets"):
                rows.append({**row, "status": "not measured",
                             "note": NP_("reason", "no ticket of the information-verification business type has a "
                                                   "first-pass result this quarter")})
            elif not acc["n"]:
                rows.append({**row, "status": "not measured",
                             "note": NP_("reason", "no tickets of the information-verification business type this quarter")})
            else:
                rows.append({**row, "status": interval_verdict(acc["ci_low"], acc["ci_high"], t.operator, t.value)})
            continue
        lv = cov
        if t.metric != "channel_coverage" or lv is None:
            continue
        row = {"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
               "target_value": t.value, "observed": lv["share"], "ci_low": lv["ci_low"], "ci_high": lv["ci_high"],
               "note": ""}
        if not lv["total"]:
            rows.append({**row, "status": "not measured",
                         "note": NP_("reason", "the study definition gives no coverage counts for this quarter")})
            continue
        rows.append({**row, "status": verdict(lv["share"], lv["ci_low"], lv["ci_high"], lv["census"], t.operator, t.value),
                     "note": NP_("reason", "census: the share is exact") if lv["census"] else ""})
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)
