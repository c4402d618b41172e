"""Appendix B, data quality: response rates, validation and rejection notes."""

from __future__ import annotations

import pandas as pd

from study.report import present as P
from study.report.analysis import Context
from study.report.text.words import _q, _semi


def response_rate(ctx: Context, dq: pd.DataFrame) -> P.Md:
    s = dq[dq["dataset"] == "survey"]
    parts = [P.nmd("{}: {} valid of {} questionnaire, a valid response rate of {}",
                   "{}: {} valid of {} questionnaires, a valid response rate of {}", r["read"], _q(r["quarter"]),
                   P.fmt_int(r["kept"]), P.fmt_int(r["read"]), P.fmt_pct(r["kept_share"], 2)) for r in s.to_dict("records")]
    return P.md("{}. Rejected rows are kept, with their reasons, in `data/processed/<quarter>/rejected_<dataset>.csv`; "
                "raw files are never modified.", _semi(parts))


def quality_notes() -> list[P.Md]:
    return [P.md("Validation rules: Likert values out of range, missing or unparsable values, duplicate ids, straight-lining, "
            "dates outside the quarter, unknown branches, timestamps out of order, absurd durations, unknown benchmark metrics.")]


def rejection_notes(ctx: Context) -> list[P.Md]:
    return [P.md("Identifiers are pseudonymised (keyed hash) in processed data; direct identifiers and free text are dropped.")]
