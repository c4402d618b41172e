"""The sample study's service-request log (contact centre, AI assistant, complaints), with its known truth.

:func:`requests_quarter` draws one quarter of raw requests (the columns ``validate`` reads) and returns
them with the quarter's truth; :func:`write_request_log` streams a large log in the *processed* schema
(for the benchmark). Both use :func:`draw`, which makes every random choice with vectorised numpy.

How a request is drawn (rates from the source digest, §3-§5):

* **arrival** -- every day of the quarter, 7x24 (the AI assistant's promise, digest §4), with a weekday x
  hour intensity :data:`WEEKDAY_WEIGHT` x :data:`HOUR_WEIGHT` (busiest on Monday at 10:00, quiet at night);
  channel mix :data:`CHANNEL_MIX` (ids of the sample study.yml; other studies' channels share the rest);
* **first response** -- log-normal around :data:`FIRST_RESPONSE` minutes per channel (phone minutes, chat
  half an hour, app hours, email ~10 h: some requests wait past 24 h); 1 % never answered;
  **resolution** -- the first response plus a log-normal :data:`RESOLUTION_EXTRA`; 3 % unresolved;
* **AI assistant** -- launched at :func:`launch_date` (six weeks into the last quarter) on the study's
  ``digital`` channels: from then on every request there starts with the AI; it is contained (AI resolves
  it) with probability :data:`AI_CONTAINED`, handed off to a human with :data:`AI_HANDOFF`, abandoned
  otherwise (digest §4: about 30 % still need a human); the first-response time on the digital channels
  is multiplied by :data:`RESPONSE_FACTOR` (0.5: halved, digest §4 "waiting time -50 %");
* **post-contact rating** (1-5) -- given by :data:`RATING_SHARE` of the customers; categorical with
  probabilities :data:`RATING_HUMAN` for human-handled requests and :data:`RATING_AI` for contained ones
  (so the true means, and the true AI - human difference, are exact);
* **complaints** -- Poisson with mean :data:`COMPLAINTS_PER_MILLION` x visits / 10^6 (visits: the quarter's
  valid queue tickets plus the study's digital sessions), grades :data:`GRADE_MIX`, resolution time
  log-normal around :data:`GRADE_RESOLUTION_HOURS` (some past their grade's deadline);
* a few invalid rows of the kinds the validator rejects (:data:`REQUEST_INVALID`, one reason each).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from study.data.config import Study, quarter_bounds

REQUESTS_PER_DAY = 170.0
CHANNEL_MIX = {"phone": 0.35, "online_chat": 0.25, "app": 0.20, "email": 0.10, "branch_desk": 0.10}
# (mean minutes, log sigma) of the first response per channel, human-handled.
FIRST_RESPONSE = {"phone": (3.0, 0.8), "online_chat": (30.0, 1.0), "app": (240.0, 1.1), "email": (600.0, 0.9),
                  "branch_desk": (10.0, 0.7)}
DEFAULT_FIRST_RESPONSE = (60.0, 1.0)
RESOLUTION_EXTRA = {"phone": (8.0, 0.7), "online_chat": (20.0, 0.8), "app": (180.0, 1.0), "email": (900.0, 0.9),
                    "branch_desk": (15.0, 0.6)}
DEFAULT_RESOLUTION_EXTRA = (60.0, 1.0)
NO_RESPONSE = 0.01
UNRESOLVED = 0.03
FIRST_CONTACT_RESOLUTION = 0.75
HOUR_WEIGHT = np.array([0.15, 0.10, 0.08, 0.06, 0.06, 0.10, 0.30, 0.70, 1.30, 1.80, 2.60, 2.00, 1.40, 1.30, 1.70, 1.80,
                        1.60, 1.30, 1.10, 1.20, 1.10, 0.80, 0.50, 0.25])
WEEKDAY_WEIGHT = np.array([1.35, 1.10, 1.00, 1.00, 1.05, 0.75, 0.60])   # ISO Monday ... Sunday
AI_CONTAINED = 0.70
AI_HANDOFF = 0.28
RESPONSE_FACTOR = 0.5
RATING_SHARE = 0.40
RATING_HUMAN = np.array([0.05, 0.08, 0.22, 0.40, 0.25])     # P(rating = 1..5)
RATING_AI = np.array([0.03, 0.05, 0.15, 0.40, 0.37])
COMPLAINTS_PER_MILLION = 3.0
GRADE_MIX = {"general": 0.70, "major": 0.20, "serious": 0.10}
GRADE_RESOLUTION_HOURS = {"general": (48.0, 0.6), "major": (120.0, 0.5), "serious": (240.0, 0.5)}
CATEGORIES = ("account", "card", "transfer", "loan", "wealth", "other")
CATEGORY_MIX = np.array([0.25, 0.25, 0.20, 0.10, 0.10, 0.10])
REQUEST_INVALID = {"duplicate_id": 10, "missing_value": 5, "responded_before_received": 6, "unknown_channel": 4,
                   "escalated_but_ai": 3, "absurd_response": 2, "unknown_grade": 2}
CUSTOMERS = 6000
FMT = "%Y-%m-%d %H:%M:%S"


def launch_date(quarter: str) -> dt.date:
    """The AI assistant's launch: the first Monday at least six weeks into ``quarter``."""
    first, _ = quarter_bounds(quarter)
    day = first + dt.timedelta(days=42)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def launch_plan(study: Study, quarter: str) -> tuple[dt.date, list[str]]:
    """When and where the AI assistant starts in ``quarter``: the study's first channel measure when it
    starts inside the quarter (its start and channels), else :func:`launch_date` on the digital channels."""
    first, last = quarter_bounds(quarter)
    for m in study.service_requests.measures:
        if first <= m.start <= last:
            return m.start, list(m.channels)
    return launch_date(quarter), [c.id for c in study.service_requests.channels if c.digital]


def _mu(mean: float, sigma: float) -> float:
    return math.log(mean) - sigma ** 2 / 2


def _channel_plan(study: Study) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Channel ids, their mix and whether each is digital."""
    ch = study.service_requests.channels
    ids = [c.id for c in ch]
    known = sum(CHANNEL_MIX.get(i, 0.0) for i in ids)
    n_other = sum(i not in CHANNEL_MIX for i in ids)
    rest = (1 - known) / n_other if n_other and known < 1 else 0.1
    mix = np.array([CHANNEL_MIX.get(i, rest) for i in ids], float)
    return ids, mix / mix.sum(), np.array([c.digital for c in ch])


def draw(study: Study, quarter: str, n: int, rng: np.random.Generator, launch: dt.date | None,
         ai_channels: list[str] | None = None) -> dict[str, np.ndarray]:
    """``n`` requests of ``quarter`` as numpy arrays (times in seconds since the epoch, durations in seconds;
    NaN / -1 where missing), sorted by arrival. ``launch``: the AI assistant's start (None: no AI) on
    ``ai_channels`` (default: the study's digital channels)."""
    first, last = quarter_bounds(quarter)
    days = (last - first).days + 1
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    w = np.array([WEEKDAY_WEIGHT[d.weekday()] for d in dates])[:, None] * HOUR_WEIGHT[None, :]
    cell = rng.choice(w.size, n, p=(w / w.sum()).ravel())
    epoch0 = (first - dt.date(1970, 1, 1)).days * 86400
    received = np.sort(epoch0 + (cell // 24) * 86400 + (cell % 24) * 3600 + rng.integers(0, 3600, n))
    ids, mix, digital = _channel_plan(study)
    if ai_channels is not None:
        digital = np.isin(ids, ai_channels)
    channel = rng.choice(len(ids), n, p=mix)
    fr = np.array([FIRST_RESPONSE.get(i, DEFAULT_FIRST_RESPONSE) for i in ids])
    ex = np.array([RESOLUTION_EXTRA.get(i, DEFAULT_RESOLUTION_EXTRA) for i in ids])
    launch_s = (launch - dt.date(1970, 1, 1)).days * 86400 if launch is not None else np.iinfo(np.int64).max
    ai = digital[channel] & (received >= launch_s)
    first_min = np.exp(np.array([_mu(m, s) for m, s in fr])[channel] + fr[channel, 1] * rng.standard_normal(n))
    first_min = np.where(ai, first_min * RESPONSE_FACTOR, first_min)
    extra_min = np.exp(np.array([_mu(m, s) for m, s in ex])[channel] + ex[channel, 1] * rng.standard_normal(n))
    first_s = np.maximum(np.rint(first_min * 60), 1).astype(np.int64)
    resolve_s = first_s + np.maximum(np.rint(extra_min * 60), 1).astype(np.int64)
    u = rng.random(n)
    contained = ai & (u < AI_CONTAINED)
    handoff = ai & (u >= AI_CONTAINED) & (u < AI_CONTAINED + AI_HANDOFF)
    abandoned = ai & ~contained & ~handoff
    answered = (rng.random(n) >= NO_RESPONSE) | ai            # the AI answers every conversation it starts
    resolved = contained | (answered & (rng.random(n) >= UNRESOLVED) & ~ai) | (handoff & (rng.random(n) >= UNRESOLVED))
    handled_ai = contained | abandoned
    rated = resolved & (rng.random(n) < RATING_SHARE)
    r_h = rng.choice(5, n, p=RATING_HUMAN) + 1
    r_a = rng.choice(5, n, p=RATING_AI) + 1
    rating = np.where(rated, np.where(handled_ai, r_a, r_h), -1)
    fcr = resolved & (rng.random(n) < FIRST_CONTACT_RESOLUTION) & ~handoff
    return {
        "received": received, "channel": channel,
        "first_s": np.where(answered, first_s, -1), "resolve_s": np.where(resolved, resolve_s, -1),
        "handled_ai": handled_ai, "escalated": handoff, "rating": rating, "fcr": fcr,
        "category": rng.choice(len(CATEGORIES), n, p=CATEGORY_MIX),
        "customer": rng.integers(0, CUSTOMERS, n), "grade": np.full(n, -1), "ai": ai,
    }


def _plant_complaints(study: Study, d: dict, k: int, rng: np.random.Generator, avoid: np.ndarray) -> None:
    """Make ``k`` human-handled, answered requests (not in ``avoid``) complaints with grades and resolution times."""
    grades = [g.id for g in study.service_requests.complaint_grades]
    if not grades or k == 0:
        return
    mix = np.array([GRADE_MIX.get(g, 0.1) for g in grades])
    pool = np.flatnonzero(~d["ai"] & (d["first_s"] >= 0))
    pool = np.setdiff1d(pool, avoid)
    rows = rng.choice(pool, k, replace=False)
    g = rng.choice(len(grades), k, p=mix / mix.sum())
    d["grade"][rows] = g
    hours = np.array([GRADE_RESOLUTION_HOURS.get(x, (72.0, 0.6)) for x in grades])
    res_h = np.exp(np.array([_mu(m, s) for m, s in hours])[g] + hours[g, 1] * rng.standard_normal(k))
    d["resolve_s"][rows] = np.maximum(np.rint(res_h * 3600), d["first_s"][rows] + 1).astype(np.int64)
    d["handled_ai"][rows] = False
    d["escalated"][rows] = False


def _truth(study: Study, quarter: str, d: dict, launch: dt.date | None, visits: int, expected: float,
           ai_channels: list[str] | None) -> dict:
    ids, mix, digital = _channel_plan(study)
    if ai_channels is not None:
        digital = np.isin(ids, ai_channels)
    grades = [g.id for g in study.service_requests.complaint_grades]
    counts = {g: int((d["grade"] == i).sum()) for i, g in enumerate(grades)}

    def within(ch: str, ai: bool, hours: float) -> float:
        """P(first response within ``hours``): log-normal CDF; the AI answers every request, humans miss 1 %."""
        m, s = FIRST_RESPONSE.get(ch, DEFAULT_FIRST_RESPONSE)
        factor = RESPONSE_FACTOR if ai else 1.0
        p = stats.norm.cdf((math.log(hours * 60 / factor) - _mu(m, s)) / s)
        return round(float((1.0 if ai else 1 - NO_RESPONSE) * p), 6)

    hours = [t.hours for t in study.service_requests.response_targets]
    out = {
        "requests_drawn": int(len(d["received"])),
        "channel_mix": {c: round(float(p), 6) for c, p in zip(ids, mix)},
        "digital_channels": [c for c, x in zip(ids, digital) if x],
        "first_response_mean_minutes_human": {c: FIRST_RESPONSE.get(c, DEFAULT_FIRST_RESPONSE)[0] for c in ids},
        "share_within_target_human": {f"{h:g}h": {c: within(c, False, h) for c in ids} for h in hours},
        "share_within_target_ai": {f"{h:g}h": {c: within(c, True, h) for c, x in zip(ids, digital) if x}
                                   for h in hours},
        "peak": {"weekday": int(np.argmax(WEEKDAY_WEIGHT)) + 1, "hour": int(np.argmax(HOUR_WEIGHT))},
        "complaints": {"true_per_million": COMPLAINTS_PER_MILLION, "visits": int(visits),
                       "expected": round(expected, 6), "drawn": int(sum(counts.values())), "by_grade": counts},
        "grade_within_deadline": {g.id: round(float(stats.norm.cdf(
            (math.log(g.deadline_hours) - _mu(*GRADE_RESOLUTION_HOURS.get(g.id, (72.0, 0.6))))
            / GRADE_RESOLUTION_HOURS.get(g.id, (72.0, 0.6))[1])), 6) for g in study.service_requests.complaint_grades},
        "rating_mean_human": round(float(np.dot(RATING_HUMAN, np.arange(1, 6))), 6),
        "rating_mean_ai": round(float(np.dot(RATING_AI, np.arange(1, 6))), 6),
    }
    m_ai, m_h = float(np.dot(RATING_AI, np.arange(1, 6))), float(np.dot(RATING_HUMAN, np.arange(1, 6)))
    if launch is not None:
        out["ai"] = {"channels": [c for c, x in zip(ids, digital) if x], "launch": launch.isoformat(),
                     "containment": AI_CONTAINED, "handoff": AI_HANDOFF,
                     "abandoned": round(1 - AI_CONTAINED - AI_HANDOFF, 6),
                     "first_response_relative_change_digital": RESPONSE_FACTOR - 1,
                     "rating_difference_ai_minus_human": round(float(np.dot(RATING_AI - RATING_HUMAN, np.arange(1, 6))), 6),
                     # on the AI channels, rated requests after the launch: contained ones (always resolved) rate
                     # as RATING_AI, handed-off ones that a human resolved as RATING_HUMAN; before, all as RATING_HUMAN
                     "rating_change_on_ai_channels": round(float(
                         (AI_CONTAINED * m_ai + AI_HANDOFF * (1 - UNRESOLVED) * m_h) / (AI_CONTAINED + AI_HANDOFF * (1 - UNRESOLVED))
                         - m_h), 6),
                     "ai_started": int(d["ai"].sum())}
    return out


def requests_quarter(study: Study, quarter: str, rng: np.random.Generator, launch: dt.date | None,
                     queue_tickets: int | None, ai_channels: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
    """One quarter of raw requests (strings, as a CSV export holds them) and the quarter's truth."""
    first, last = quarter_bounds(quarter)
    days = (last - first).days + 1
    n = int(rng.poisson(REQUESTS_PER_DAY * days))
    d = draw(study, quarter, n, rng, launch, ai_channels)
    v = study.service_requests.visits
    visits = (int(queue_tickets or 0) if v.queue_tickets else 0) + int(v.digital_sessions.get(quarter, 0))
    expected = COMPLAINTS_PER_MILLION * visits / 1e6
    k = int(rng.poisson(expected))
    total_invalid = sum(REQUEST_INVALID.values())
    bad_rows = rng.choice(np.arange(n // 2, n), total_invalid, replace=False)
    _plant_complaints(study, d, k, rng, bad_rows)
    truth = _truth(study, quarter, d, launch, visits, expected, ai_channels)
    df = _raw_frame(study, quarter, d, rng)
    truth["invalid_by_reason"] = _corrupt(df, bad_rows, rng, study)
    truth["rows"] = len(df)
    truth["valid"] = len(df) - total_invalid
    return df, truth


def _stamp(seconds: np.ndarray) -> np.ndarray:
    out = pd.to_datetime(np.where(seconds >= 0, seconds, 0), unit="s").strftime(FMT).to_numpy(dtype=object)
    out[seconds < 0] = ""
    return out


def _raw_frame(study: Study, quarter: str, d: dict, rng: np.random.Generator) -> pd.DataFrame:
    ids, _, _ = _channel_plan(study)
    grades = [g.id for g in study.service_requests.complaint_grades]
    n = len(d["received"])
    yy, q = quarter[2:4], quarter[-1]
    customers = np.array([f"{x:012d}" for x in rng.integers(10 ** 11, 10 ** 12, CUSTOMERS)])
    branch = np.where(np.array(ids)[d["channel"]] == "branch_desk",
                      np.array(study.branch_ids)[rng.integers(0, len(study.branch_ids), n)], "")
    first = np.where(d["first_s"] >= 0, d["received"] + d["first_s"], -1)
    resolved = np.where(d["resolve_s"] >= 0, d["received"] + d["resolve_s"], -1)
    return pd.DataFrame({
        "request_id": [f"SR{yy}Q{q}-{i:06d}" for i in range(1, n + 1)],
        "customer_id": customers[d["customer"]],
        "branch_id": branch,
        "channel": np.array(ids)[d["channel"]],
        "received_at": _stamp(d["received"]),
        "first_response_at": _stamp(first),
        "resolved_at": _stamp(resolved),
        "handled_by": np.where(d["handled_ai"], "ai", "human"),
        "escalated": d["escalated"].astype(int),
        "category": np.array(CATEGORIES)[d["category"]],
        "complaint_grade": np.where(d["grade"] >= 0, np.array(grades + [""])[d["grade"]], ""),
        "resolved_first_contact": np.where(d["resolve_s"] >= 0, d["fcr"].astype(int).astype(str), ""),
        "post_contact_rating": np.where(d["rating"] > 0, d["rating"].astype(str), ""),
    }).astype(object)


def _corrupt(df: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator, study: Study) -> dict:
    """Make exactly REQUEST_INVALID[reason] of ``rows`` invalid, one reason each (none is a complaint)."""
    originals = iter(rng.permutation(np.setdiff1d(np.arange(len(df) // 2), rows)))
    k = 0
    for reason, count in REQUEST_INVALID.items():
        for r in rows[k:k + count]:
            if reason == "duplicate_id":           # the CRM exported a request twice
                df.iloc[r] = df.iloc[int(next(originals))]
                df.at[r, "complaint_grade"] = ""
            elif reason == "missing_value":
                df.at[r, "received_at"] = ""
            elif reason == "responded_before_received":
                t = pd.Timestamp(df.at[r, "received_at"]) - pd.Timedelta(minutes=int(rng.integers(5, 90)))
                df.at[r, "first_response_at"] = t.strftime(FMT)
                df.at[r, "resolved_at"] = ""
            elif reason == "unknown_channel":
                df.at[r, "channel"] = rng.choice(["wechat", "fax"])
            elif reason == "escalated_but_ai":
                df.at[r, "handled_by"], df.at[r, "escalated"] = "ai", 1
            elif reason == "absurd_response":      # a clock set a year ahead
                t = pd.Timestamp(df.at[r, "received_at"]) + pd.Timedelta(days=int(rng.integers(60, 300)))
                df.at[r, "first_response_at"] = t.strftime(FMT)
                df.at[r, "resolved_at"] = ""
            elif reason == "unknown_grade":
                df.at[r, "complaint_grade"] = "urgent"
            else:  # pragma: no cover
                raise ValueError(reason)
        k += count
    return dict(REQUEST_INVALID)


# ---------------------------------------------------------------------------------------------
# A large log in the processed schema (for the benchmark)


def write_request_log(study: Study, data_dir: Path | str, quarter: str, n_requests: int, seed: int = 0,
                      chunk_rows: int = 2_500_000, launch: dt.date | None = None) -> Path:
    """Stream ``n_requests`` processed requests of ``quarter`` as Parquet parts into
    ``data_dir/processed/<quarter>/service_requests/part-*.parquet``; return the folder.

    The same draw as the sample (:func:`draw`), written in the schema ``prepare`` writes (pseudonyms as 20 hex
    digits), chunk by chunk, so memory is bounded by ``chunk_rows``. ``launch``: the AI assistant's start
    (default: :func:`launch_date` of the quarter). Complaints: :data:`COMPLAINTS_PER_MILLION` per million
    requests' worth of visits (a handful per part).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from study.sample.log import _HEX, _fixed_width_strings

    if n_requests <= 0:
        raise ValueError(f"n_requests must be positive, got {n_requests}")
    out = Path(data_dir) / "processed" / quarter / "service_requests"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.parquet"):
        old.unlink()
    launch = launch or launch_date(quarter)
    ids, _, _ = _channel_plan(study)
    grades = [g.id for g in study.service_requests.complaint_grades]
    rng0 = np.random.default_rng([seed, 0])
    customers = np.ascontiguousarray(_HEX[rng0.integers(0, 16, size=(200_000, 20), dtype=np.uint8)])
    n_parts = math.ceil(n_requests / chunk_rows)
    for part in range(n_parts):
        n = min(chunk_rows, n_requests - part * chunk_rows)
        rng = np.random.default_rng([seed, part + 1])
        d = draw(study, quarter, n, rng, launch)
        _plant_complaints(study, d, int(rng.poisson(COMPLAINTS_PER_MILLION * n / 1e6 * 170)), rng, np.empty(0, np.int64))

        def ts(sec, ok):
            return pa.array(np.where(ok, sec, 0) * 1_000_000, type=pa.timestamp("us"), mask=~ok)

        def dictionary(idx, labels, ok=None):
            ok = np.ones(len(idx), bool) if ok is None else ok
            return pa.DictionaryArray.from_arrays(pa.array(np.where(ok, idx, 0).astype(np.int32), mask=~ok),
                                                  pa.array(labels, type=pa.string()))

        has_first, has_res = d["first_s"] >= 0, d["resolve_s"] >= 0
        rated = d["rating"] > 0
        first_min = np.where(has_first, d["first_s"] / 60.0, np.nan)
        res_min = np.where(has_res, d["resolve_s"] / 60.0, np.nan)
        table = pa.Table.from_arrays([
            _fixed_width_strings(_HEX[rng.integers(0, 16, size=(n, 20), dtype=np.uint8)]),
            _fixed_width_strings(customers[rng.integers(0, len(customers), n)]),
            dictionary(d["channel"], ids),
            ts(d["received"], np.ones(n, bool)),
            ts(d["received"] + d["first_s"], has_first), ts(d["received"] + d["resolve_s"], has_res),
            dictionary(d["handled_ai"].astype(np.int32), ["human", "ai"]),
            pa.array(d["escalated"]),
            dictionary(d["category"], list(CATEGORIES)),
            dictionary(np.maximum(d["grade"], 0), grades or ["none"], d["grade"] >= 0),
            pa.array(d["fcr"], mask=~has_res),
            pa.array(np.where(rated, d["rating"], 0).astype(float), mask=~rated),
            pa.array(first_min, mask=~has_first), pa.array(res_min, mask=~has_res),
        ], names=["request_pid", "customer_pid", "channel", "received_at", "first_response_at", "resolved_at",
                  "handled_by", "escalated", "category", "complaint_grade", "resolved_first_contact",
                  "post_contact_rating", "first_response_minutes", "resolution_minutes"])
        path = out / f"part-{part:05d}.parquet"
        pq.write_table(table, path.with_name(path.name + ".tmp"), compression="zstd", compression_level=1,
                       row_group_size=1_000_000)
        path.with_name(path.name + ".tmp").replace(path)
    return out
