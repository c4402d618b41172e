"""The seeded sample study: realistic raw data for two quarters, with its known truth.

``write_sample`` writes ``data/raw/<QUARTER>/`` for a baseline and a follow-up quarter
(``survey.csv``, ``process_times.csv.gz``, ``benchmark.csv``) and ``data/raw/truth.json``. It is
calibrated to the source documents (``shared/seeds-digest.md``):

* survey — 800 questionnaires issued per quarter (735 valid in the baseline, as in the digest);
  ten dimensions whose 0-100 scores sit near the digest's (professional competence ~82 ...
  retention ~66); items generated from a correlated latent model and cut to the 1-5 scale;
  reverse-keyed items stored reversed; overall satisfaction and likelihood to recommend generated
  from the observed dimension scores through known weights; invalid rows of the kinds the
  validator catches, one reason each;
* process times — queue tickets over every branch and working day: Poisson arrivals with an
  intraday profile, waits from the M/M/c (Erlang C) waiting-time distribution of each branch-hour
  given the counters actually open, handling times per business type around the digest's actual
  minutes (account opening 15 → ~25, deposit 10 → ~18, loan enquiry 5 → ~9), first-pass yield
  near 82 %; a few invalid rows;
* benchmark — the digest's competitor table;
* realistic identifiers (respondent ids, 12-digit customer ids, 11-digit mobile numbers, free-text
  comments in Chinese), so pseudonymisation and the removal of direct identifiers are exercised.

The follow-up quarter carries a known improvement in the pilot branches of the first improvement
measure only: every wait is multiplied by ``1 + PILOT_WAITING_CHANGE`` (−20 %) and the latent
efficiency dimension rises by ``PILOT_EFFICIENCY_SHIFT`` item points; control branches unchanged.

Truths that depend on the cutting of latent values to a 1-5 scale (population Cronbach's α, the
population LMG importances, the pilot's effect on the 0-100 efficiency score) are estimated from
one very large draw of the same generator (``POPULATION_N`` respondents) and written to
``truth.json`` with that size stated. The output is byte-identical for the same seed and
package versions (CSV text, gzip with a zero timestamp, sorted JSON).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io as _io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from study.data import io
from study.data.config import Study, quarter_bounds
from study.stats.drivers import lmg_from_cov
from study.stats.process import erlang_c
from study.stats.reliability import cronbach_alpha

DEFAULT_SEED = 20250401
QUARTERS = ("2023Q3", "2023Q4", "2024Q1", "2024Q2", "2024Q3", "2024Q4", "2025Q1", "2025Q2")
BASELINE = "2025Q1"         # the quarter before the first measure: calibrated to the digest, 735 valid questionnaires
QUEUE_LOG_FROM = "2025Q1"   # the queue system's export starts here; earlier quarters ship the survey only
ISSUED_PER_QUARTER = 800
# Invalid questionnaires per quarter by the reason the validator gives (one reason per row).
SURVEY_INVALID = {
    0: {"out_of_range": 16, "missing_value": 18, "straight_lining": 12, "duplicate_id": 8,
        "unknown_branch": 4, "date_outside_quarter": 4, "unparsable": 3},   # 65 → 735 valid
    1: {"out_of_range": 13, "missing_value": 14, "straight_lining": 10, "duplicate_id": 6,
        "unknown_branch": 3, "date_outside_quarter": 3, "unparsable": 3},   # 52 → 748 valid
}
PROCESS_INVALID = {"duplicate_id": 25, "missing_value": 20, "called_before_issued": 12, "started_before_called": 5,
                   "finished_before_started": 12, "absurd_waiting": 6, "unknown_branch": 5}

# Digest §1, survey dimension scores (0-100), in study.yml order of the sample's dimensions.
DIGEST_SCORES = {"professionalism": 82.13, "problem_handling": 79.45, "explanation": 78.92, "attitude": 77.68,
                 "efficiency": 72.51, "innovation": 71.21, "environment": 70.38, "responsiveness": 69.87,
                 "channel": 68.55, "retention": 66.43}
DIGEST_CSAT_0_100 = 78.55
# True weights of the dimension scores (0-100) in the latent overall satisfaction.
DRIVER_WEIGHTS = {"efficiency": 0.25, "professionalism": 0.18, "problem_handling": 0.14, "responsiveness": 0.12,
                  "attitude": 0.10, "channel": 0.08, "explanation": 0.05, "retention": 0.04,
                  "environment": 0.02, "innovation": 0.02}
GENERAL_LOADING = 0.45      # latent dimension = mean + GENERAL_LOADING·G + SPECIFIC_SD·U (item units)
SPECIFIC_SD = 0.45
ITEM_NOISE_SD = {"innovation": 0.75}   # item noise SD per dimension (default below): a weaker scale
DEFAULT_ITEM_NOISE_SD = 0.5
SATISFACTION_NOISE_SD = 0.40
RECOMMEND_NOISE_SD = 1.3
PILOT_EFFICIENCY_SHIFT = 0.45   # latent efficiency, item points (1-5 scale): a DiD power near 0.95 after Holm (MDE ~5.6 points)
PILOT_WAITING_CHANGE = -0.20    # relative change of every wait in pilot branches after the start
POPULATION_N = 400_000
# The sampling design (study.yml ``sampling``) and tracking across quarters, see _design_shift.
BRANCH_SIZE_EFFECT = 0.25   # latent item points per unit of log population size: bigger branches less satisfied
TREND_PER_QUARTER = 0.06    # latent item points per quarter, every dimension (and so the outcomes), ...
TREND_UNTIL = "2024Q2"      # ... rising until this quarter, level after it (an improvement programme, then a plateau)
SHOCK_MONTH = "2024-11"     # a month out of control: a core-system migration
SHOCK_SHIFT = -0.8          # latent item points, every respondent interviewed in SHOCK_MONTH
QUARTER_POPULATION_N = 200_000

SEGMENT_SHARES = {"mass": 0.70, "affluent": 0.25, "private_banking": 0.05}
CHANNEL_SHARES = {"branch": 0.50, "online_banking": 0.20, "mobile_banking": 0.30}

# Process times (digest §1: standard vs actual minutes; info verification cycle 48 min, FPY 82 %).
HANDLING_MEAN = {"account_opening": 25.0, "deposit": 18.0, "loan_enquiry": 9.0, "wealth_management": 22.0,
                 "info_verification": 34.0}
HANDLING_CV = 0.45
BUSINESS_MIX = {"account_opening": 0.15, "deposit": 0.40, "loan_enquiry": 0.15, "wealth_management": 0.15,
                "info_verification": 0.15}
FIRST_PASS = {"account_opening": 0.80, "deposit": 0.88, "loan_enquiry": 0.85, "wealth_management": 0.80,
              "info_verification": 0.66}
HOUR_PROFILE = np.array([0.80, 1.25, 1.20, 0.95, 0.85, 1.15, 1.10, 0.70])  # 09:00 ... 16:00, relative arrivals
OPEN_SHARE = 0.6            # counters open = round(share × counters) at every hour: staffing ignores peaks
# Average utilisation of the open counters by their number (busier where fewer are open), so
# branch mean waits sit around 10-15 minutes with long waits in the peaks.
UTILISATION = {1: 0.50, 2: 0.58, 3: 0.63, 4: 0.67}
DEFAULT_UTILISATION = 0.70
MAX_UTILISATION = 0.95
APPOINTMENT_SHARE = {"baseline": 0.15, "pilot_after": 0.40}
# Customer segments in the queue log (digest §2: VIP and private-banking lanes). A ticket's segment is drawn from
# SEGMENT_SHARES independently of everything else, from its own random stream (so no other draw changes); its wait
# is multiplied by the segment's lane factor: an affluent (VIP) customer waits half as long as a mass customer, a
# private-banking customer a quarter as long. The factors are scaled so that their mean over the segment mix is 1:
# the expected wait of a branch (and every waiting truth derived from it) is the same as without segments.
SEGMENT_WAITING_RATIO = {"mass": 1.0, "affluent": 0.5, "private_banking": 0.25}
# Seed §5: the plan's 48 target service areas, those reached by a service channel in each quarter (a census).
CHANNEL_COVERAGE = {"2025Q1": (41, 48), "2025Q2": (44, 48)}

BENCHMARK = {  # digest §1 competitor comparison
    "Our bank": {"handling_time": 5.2, "experience_score": 8.3, "online_coverage": 92, "value_added_services": 12},
    "Bank A": {"handling_time": 4.8, "experience_score": 8.1, "online_coverage": 95, "value_added_services": 15},
    "Bank B": {"handling_time": 6.1, "experience_score": 7.9, "online_coverage": 88, "value_added_services": 10},
    "Bank C": {"handling_time": 5.0, "experience_score": 8.5, "online_coverage": 90, "value_added_services": 14},
}
COMMENTS = ["等候时间太长了，希望多开几个窗口", "柜员态度很好，办理很快", "希望周末也能办理业务", "手机银行转账有时失败",
            "理财经理讲解很专业", "填的表格太多了", "网点环境干净整洁", "电话一直打不通", "到期提醒很及时，谢谢",
            "排队叫号系统经常出错"]
PILOT_COMMENTS = ["预约取号很方便，几乎不用排队", "智能排队以后快多了"]


# ---------------------------------------------------------------------------------------------
# Survey


def _cut(latent: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.rint(latent), lo, hi).astype(np.int64)


def _noise_sd(dim: str) -> float:
    return ITEM_NOISE_SD.get(dim, DEFAULT_ITEM_NOISE_SD)


def _dimension_latent_sd() -> float:
    return math.hypot(GENERAL_LOADING, SPECIFIC_SD)


def _calibrate_means(study: Study, seed: int) -> dict[str, float]:
    """Latent means such that the expected 0-100 score of each dimension equals the digest's."""
    lo, hi = study.questionnaire.scale.min, study.questionnaire.scale.max
    rng = np.random.default_rng([seed, 1])
    z = rng.standard_normal(200_000) * _dimension_latent_sd()
    out = {}
    for dim in study.dimension_ids:
        target = lo + (hi - lo) * DIGEST_SCORES.get(dim, 70.0) / 100
        e = rng.standard_normal(200_000) * _noise_sd(dim)
        a, b = lo - 1.0, hi + 1.0
        for _ in range(40):  # bisection: the expected item value is increasing in the latent mean
            m = (a + b) / 2
            if _cut(m + z + e, lo, hi).mean() < target:
                a = m
            else:
                b = m
        out[dim] = round((a + b) / 2, 6)
    return out


def _respondents(study: Study, n: int, rng: np.random.Generator, means: dict[str, float],
                 pilot_mask: np.ndarray, satisfaction_shift: float, recommend_shift: float,
                 shift: np.ndarray | float = 0.0) -> pd.DataFrame:
    """Items (as answered: reverse-keyed items reversed), dimension scores and outcomes for n people."""
    q = study.questionnaire
    lo, hi = q.scale.min, q.scale.max
    g = rng.standard_normal(n)
    frame: dict[str, np.ndarray] = {}
    scores = {}
    for dim, items in study.scales.items():
        latent = means[dim] + shift + GENERAL_LOADING * g + SPECIFIC_SD * rng.standard_normal(n)
        if dim == "efficiency":
            latent = latent + PILOT_EFFICIENCY_SHIFT * pilot_mask
        answers = []
        for item in items:
            x = _cut(latent + _noise_sd(dim) * rng.standard_normal(n), lo, hi)
            answers.append(x)
            frame[item] = (int(lo + hi) - x) if item in study.reverse_items else x
        scores[dim] = (np.mean(answers, axis=0) - lo) / (hi - lo) * 100
    sat_latent = satisfaction_shift + sum(w * scores[d] for d, w in DRIVER_WEIGHTS.items() if d in scores) / 100 * 4 + 1
    sat_latent = sat_latent + SATISFACTION_NOISE_SD * rng.standard_normal(n)
    o = q.outcomes
    frame[o.overall_satisfaction.column] = _cut(sat_latent, o.overall_satisfaction.scale.min, o.overall_satisfaction.scale.max)
    rec_noise = RECOMMEND_NOISE_SD * rng.standard_normal(n)
    rec_latent = (sat_latent - 1) / 4 * 10 + recommend_shift + rec_noise
    frame[o.recommend.column] = _cut(rec_latent, o.recommend.scale.min, o.recommend.scale.max)
    p_complaint = 1 / (1 + np.exp(3.4 + 1.6 * (sat_latent - 3.5)))
    frame[o.complaint.column] = (rng.random(n) < p_complaint).astype(np.int64)
    out = pd.DataFrame(frame)
    for dim, s in scores.items():
        out[f"_score_{dim}"] = s
    out["_sat_latent"] = sat_latent - satisfaction_shift   # for calibration; never written
    out["_rec_noise"] = rec_noise
    return out


def _calibrate_outcomes(study: Study, means: dict[str, float], seed: int) -> tuple[float, float]:
    """Shifts so the overall satisfaction 0-100 mean matches the digest and the NPS sits near +15."""
    o = study.questionnaire.outcomes
    d = _respondents(study, 100_000, np.random.default_rng([seed, 2]), means, np.zeros(100_000), 0.0, 0.0)
    latent, noise = d["_sat_latent"].to_numpy(), d["_rec_noise"].to_numpy()
    sc, rc = o.overall_satisfaction.scale, o.recommend.scale
    a, b = -2.0, 2.0
    for _ in range(30):  # bisection: both means increase with the shift
        m = (a + b) / 2
        if (_cut(latent + m, sc.min, sc.max).mean() - sc.min) / (sc.max - sc.min) * 100 < DIGEST_CSAT_0_100:
            a = m
        else:
            b = m
    s_shift = (a + b) / 2
    a, b = -3.0, 3.0
    for _ in range(30):
        m = (a + b) / 2
        r = _cut((latent + s_shift - 1) / 4 * 10 + m + noise, rc.min, rc.max)
        if ((r >= 9).mean() - (r <= 6).mean()) * 100 < 15.0:
            a = m
        else:
            b = m
    return round(s_shift, 6), round((a + b) / 2, 6)


def _ids(rng: np.random.Generator, n: int, digits: int, first: str = "") -> np.ndarray:
    lo = 10 ** (digits - 1 - len(first))
    body = rng.integers(lo if not first else 0, 10 ** (digits - len(first)), n)
    return np.array([f"{first}{b:0{digits - len(first)}d}" for b in body])


def _working_days(quarter: str) -> list[dt.date]:
    first, last = quarter_bounds(quarter)
    return [d.date() for d in pd.date_range(first, last) if d.weekday() < 5]


def _survey_quarter(study: Study, quarter: str, qi: int, followup: bool, rng: np.random.Generator,
                    means, shifts) -> tuple[pd.DataFrame, dict]:
    n = ISSUED_PER_QUARTER
    measure = study.measures[0] if study.measures else None
    branches = np.array(study.branch_ids)
    branch = branches[np.arange(n) % len(branches)]   # stratified: equal allocation over branches
    rng.shuffle(branch)
    pilot = np.isin(branch, measure.pilot) & followup if measure else np.zeros(n, bool)
    days = _working_days(quarter)
    interview = rng.integers(0, len(days), n)
    shift = _design_shift(study, quarter, branch, [days[i] for i in interview])
    data = _respondents(study, n, rng, means, pilot.astype(float), *shifts, shift=shift)
    data = data[[c for c in data.columns if not c.startswith("_")]]
    yy, qq = quarter[2:4], quarter[-1]
    front = pd.DataFrame({
        "respondent_id": [f"R{yy}Q{qq}-{i:06d}" for i in range(1, n + 1)],
        "customer_id": _ids(rng, n, 12),
        "phone": np.array([f"1{p}{b}" for p, b in zip(rng.choice(list("3456789"), n), _ids(rng, n, 9, "0"))]),
        "branch_id": branch,
        "segment": rng.choice(list(SEGMENT_SHARES), n, p=list(SEGMENT_SHARES.values())),
        "channel": rng.choice(list(CHANNEL_SHARES), n, p=list(CHANNEL_SHARES.values())),
        "interview_date": [days[i].isoformat() for i in interview],
    })
    df = pd.concat([front, data], axis=1).astype(object)
    comment = np.where(rng.random(n) < 0.08, rng.choice(COMMENTS, n), "")
    if followup:
        comment = np.where(pilot & (rng.random(n) < 0.1), rng.choice(PILOT_COMMENTS, n), comment)
    df["comment"] = comment
    # An answer pattern can be a straight line by chance; nudge such rows so that only the rows
    # made invalid on purpose are rejected for straight-lining.
    items = study.item_ids
    flat = df[items].nunique(axis=1) == 1
    for r in np.flatnonzero(flat.to_numpy()):
        v = int(df.at[r, items[0]])
        df.at[r, items[0]] = v - 1 if v > study.questionnaire.scale.min else v + 1
    expected = _corrupt_survey(study, df, quarter, SURVEY_INVALID[qi], rng)
    return df, expected


def _corrupt_survey(study: Study, df: pd.DataFrame, quarter: str, plan: dict[str, int],
                    rng: np.random.Generator) -> dict:
    """Make exactly plan[reason] rows invalid for each reason (one reason per row)."""
    items = study.item_ids
    q = study.questionnaire
    n = len(df)
    total = sum(plan.values())
    # duplicates must come after the row they copy the id from: choose rows from the second half.
    rows = rng.choice(np.arange(n // 2, n), total, replace=False)
    k = 0
    unused_originals = iter(rng.permutation(np.setdiff1d(np.arange(n // 2), rows)))
    first, _ = quarter_bounds(quarter)
    for reason, count in plan.items():
        for r in rows[k:k + count]:
            if reason == "out_of_range":
                col = rng.choice(items)
                df.at[r, col] = int(rng.choice([0, q.scale.max + 1]))
            elif reason == "missing_value":
                for col in rng.choice(items, int(rng.integers(1, 6)), replace=False):
                    df.at[r, col] = ""
            elif reason == "straight_lining":
                v = int(rng.choice([q.scale.max, 3, q.scale.max - 1]))
                for col in items:
                    df.at[r, col] = v
            elif reason == "duplicate_id":
                df.at[r, "respondent_id"] = df.at[int(next(unused_originals)), "respondent_id"]
            elif reason == "unknown_branch":
                df.at[r, "branch_id"] = rng.choice(["B99", "b-01", "总行营业部"])
            elif reason == "date_outside_quarter":
                df.at[r, "interview_date"] = (first - dt.timedelta(days=int(rng.integers(1, 40)))).isoformat()
            elif reason == "unparsable":
                col = rng.choice(items)
                df.at[r, col] = f"{df.at[r, col]}分"
            else:  # pragma: no cover - the plan is a module constant
                raise ValueError(reason)
        k += count
    return {"issued": n, "valid": n - total, "invalid": total, "invalid_by_reason": dict(plan)}


# ---------------------------------------------------------------------------------------------
# Sampling design and tracking (study.yml ``sampling``; issue 13)


def _branch_sizes(study: Study, quarter: str) -> dict[str, float]:
    """Population size of each branch in ``quarter`` from study.yml ``sampling`` (equal sizes without it)."""
    sp = study.sampling
    if sp is None or sp.strata != "branch_id" or sp.population_source != "study":
        return {b: 1.0 for b in study.branch_ids}
    sizes = {**sp.population, **sp.population_by_quarter.get(quarter, {})}
    return {b: float(sizes.get(b, 0.0)) for b in study.branch_ids}


def _branch_shifts(study: Study, quarter: str) -> dict[str, float]:
    """Latent shift of each branch: −BRANCH_SIZE_EFFECT × (log size − its population-weighted mean), so
    the population's average shift is 0 and small branches, over-represented by an equal allocation,
    are the more satisfied ones (the unweighted estimate is biased upwards)."""
    sizes = _branch_sizes(study, quarter)
    total = sum(sizes.values())
    logs = {b: math.log(v) for b, v in sizes.items() if v > 0}
    centre = sum(sizes[b] / total * v for b, v in logs.items())
    return {b: -BRANCH_SIZE_EFFECT * (logs[b] - centre) if b in logs else 0.0 for b in study.branch_ids}


def _quarter_index(quarter: str) -> int:
    return int(quarter[:4]) * 4 + int(quarter[-1]) - 1


def _design_shift(study: Study, quarter: str, branch, dates) -> np.ndarray:
    """Latent shift of each respondent: the branch's (design), the quarter's (trend: rising by
    TREND_PER_QUARTER until TREND_UNTIL, level after) and the shock month's (out of control)."""
    bs = _branch_shifts(study, quarter)
    trend = TREND_PER_QUARTER * min(0, _quarter_index(quarter) - _quarter_index(TREND_UNTIL))
    shock = np.array([SHOCK_SHIFT if d.isoformat()[:7] == SHOCK_MONTH else 0.0 for d in dates])
    return np.array([bs.get(b, 0.0) for b in branch]) + trend + shock


def _population_draw(study: Study, quarter: str, n: int, seed: int, means, shifts, pilot: bool) -> pd.DataFrame:
    """n members of the quarter's population: branches in proportion to their sizes, interview days
    uniform over the quarter's working days, the pilot's effect in its branches when ``pilot``. The
    same seed gives paired draws (with and without the pilot)."""
    sizes = _branch_sizes(study, quarter)
    ids = np.array(list(sizes))
    p = np.array(list(sizes.values()))
    arng = np.random.default_rng([seed, 4, _quarter_index(quarter)])
    branch = ids[arng.choice(len(ids), n, p=p / p.sum())]
    days = _working_days(quarter)
    day = [days[i] for i in arng.integers(0, len(days), n)]
    measure = study.measures[0] if study.measures else None
    mask = (np.isin(branch, measure.pilot) & pilot).astype(float) if measure else np.zeros(n)
    out = _respondents(study, n, np.random.default_rng([seed, 3]), means, mask, *shifts,
                       shift=_design_shift(study, quarter, branch, day))
    out["_branch"] = branch
    return out


def _summary(study: Study, pop: pd.DataFrame) -> dict:
    o = study.questionnaire.outcomes
    sc = o.overall_satisfaction.scale
    s = pop[o.overall_satisfaction.column]
    r = pop[o.recommend.column]
    return {
        "overall_satisfaction_0_100": round(float((s.mean() - sc.min) / (sc.max - sc.min) * 100), 3),
        "csat_top2": round(float((s >= sc.max - 1).mean()), 4),
        "nps": round(float(((r >= 9).mean() - (r <= 6).mean()) * 100), 3),
        "complaint_rate": round(float(pop[o.complaint.column].mean()), 4),
        "dimension_scores_0_100": {d: round(float(pop[f"_score_{d}"].mean()), 3) for d in study.dimension_ids},
    }


def _tracking_truth(study: Study, quarters, means, shifts, seed: int) -> dict:
    """Population values of every quarter (QUARTER_POPULATION_N members each), the trend and the shock."""
    measure = study.measures[0] if study.measures else None
    per_quarter = {}
    for q in quarters:
        followup = bool(measure) and quarter_bounds(q)[0] >= measure.start
        per_quarter[q] = _summary(study, _population_draw(study, q, QUARTER_POPULATION_N, seed, means, shifts, followup))
    sizes = _branch_sizes(study, BASELINE)
    return {
        "population_n_per_quarter": QUARTER_POPULATION_N,
        "by_quarter": per_quarter,
        "trend_latent_per_quarter": TREND_PER_QUARTER,
        "trend_until": TREND_UNTIL,
        "out_of_control_month": SHOCK_MONTH,
        "shock_latent_shift": SHOCK_SHIFT,
        "branch_size_effect": BRANCH_SIZE_EFFECT,
        "branch_shifts": {b: round(v, 6) for b, v in _branch_shifts(study, BASELINE).items()},
        "branch_population_share": {b: round(v / sum(sizes.values()), 6) for b, v in sizes.items()},
        "note": "every dimension's latent value moves by the branch shift (design), the trend per quarter from the "
                "baseline and the shock in its month; by_quarter holds population values from draws with branches in "
                "proportion to study.yml sampling population sizes (the pilot's effect in its branches after the start).",
    }


# ---------------------------------------------------------------------------------------------
# Process times


def _lognormal(rng, mean, cv, size):
    s2 = math.log(1 + cv * cv)
    return rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), size)


def segment_waiting_factors(study: Study) -> dict[str, float]:
    """Each declared segment's lane factor on waiting (:data:`SEGMENT_WAITING_RATIO`, unknown segments 1), scaled to
    mean 1 over :data:`SEGMENT_SHARES`; empty when the study declares no segments."""
    ids = [s.id for s in study.segments]
    if not ids:
        return {}
    p = np.array([SEGMENT_SHARES.get(i, 0.0) for i in ids])
    p = p / p.sum() if p.sum() > 0 else np.full(len(ids), 1 / len(ids))
    r = np.array([SEGMENT_WAITING_RATIO.get(i, 1.0) for i in ids])
    return {i: float(x) for i, x in zip(ids, r / float(np.dot(p, r)))}


def _tickets_quarter(study: Study, quarter: str, followup: bool, rng: np.random.Generator,
                     seed: int) -> tuple[pd.DataFrame, dict]:
    measure = study.measures[0] if study.measures else None
    types = [b for b in study.business_type_ids if b in BUSINESS_MIX] or study.business_type_ids
    mix = np.array([BUSINESS_MIX.get(t, 1.0) for t in types])
    mix = mix / mix.sum()
    mean_handling = float(np.dot(mix, [HANDLING_MEAN.get(t, 15.0) for t in types]))
    mu = 60.0 / mean_handling                      # services per counter-hour
    open_h = study.service_level.opening_hours.open
    hours = np.arange(open_h, study.service_level.opening_hours.close)
    profile = np.resize(HOUR_PROFILE, len(hours))
    profile = profile / profile.mean()
    days = _working_days(quarter)
    parts = []
    expected_wait, arrivals = {}, {}
    # A branch's utilisation is a property of the branch, the same in every quarter.
    jitter = np.random.default_rng([seed, 7]).uniform(-0.02, 0.02, len(study.branches))
    for bi, b in enumerate(study.branches):
        pilot_after = bool(followup and measure and b.id in measure.pilot)
        factor = 1 + PILOT_WAITING_CHANGE if pilot_after else 1.0
        open_counters = max(1, int(round(OPEN_SHARE * b.counters)))
        rho = UTILISATION.get(open_counters, DEFAULT_UTILISATION) + jitter[bi]
        lam_avg = rho * open_counters * mu            # arrivals per hour
        waits_weighted = 0.0
        for hi, h in enumerate(hours):
            lam = lam_avg * profile[hi]
            load = min(lam / mu, MAX_UTILISATION * open_counters)
            p_wait = erlang_c(load, 1.0, open_counters)   # load in Erlangs: arrival rate with service rate 1
            rate = (open_counters - load) * mu / 60.0          # per minute
            waits_weighted += lam * (p_wait / rate + 0.6) * factor
            counts = rng.poisson(lam, len(days))
            m = int(counts.sum())
            day_idx = np.repeat(np.arange(len(days)), counts)
            issued_min = h * 60 + rng.random(m) * 60
            wait = np.where(rng.random(m) < p_wait, rng.exponential(1 / rate, m), 0.0)
            wait = (wait + rng.uniform(0.2, 1.0, m)) * factor   # + time for the call to be answered
            walk = rng.uniform(0.3, 1.5, m)
            btype = rng.choice(len(types), m, p=mix)
            handling = np.empty(m)
            for ti, t in enumerate(types):
                sel = btype == ti
                handling[sel] = _lognormal(rng, HANDLING_MEAN.get(t, 15.0), HANDLING_CV, int(sel.sum()))
            first_pass = rng.random(m) < np.array([FIRST_PASS.get(t, 0.82) for t in types])[btype]
            appointment = APPOINTMENT_SHARE["pilot_after" if pilot_after else "baseline"]
            parts.append(pd.DataFrame({
                "branch_id": b.id, "day": day_idx, "issued_min": issued_min, "wait": wait, "walk": walk,
                "handling": handling, "btype": btype, "first_pass": first_pass,
                "counter": rng.integers(1, open_counters + 1, m),
                "appointment": rng.random(m) < appointment,
            }))
        expected_wait[b.id] = waits_weighted / (lam_avg * profile.sum())
        arrivals[b.id] = lam_avg * profile.sum()
    t = pd.concat(parts, ignore_index=True).sort_values(["branch_id", "day", "issued_min"], kind="stable")
    t = t.reset_index(drop=True)
    factors = segment_waiting_factors(study)
    if factors:   # the customer segment, from its own stream (every other draw stays as it was), and its lane
        ids = list(factors)
        p = np.array([SEGMENT_SHARES.get(i, 0.0) for i in ids])
        p = p / p.sum() if p.sum() > 0 else np.full(len(ids), 1 / len(ids))
        srng = np.random.default_rng([seed, 500 + _quarter_index(quarter)])
        t["segment"] = np.array(ids)[srng.choice(len(ids), len(t), p=p)]
        t["wait"] = t["wait"] * t["segment"].map(factors).to_numpy()
    day0 = np.array([np.datetime64(d, "s") for d in days])
    base = day0[t["day"].to_numpy()]

    def stamp(minutes):
        return base + np.rint(minutes * 60).astype("timedelta64[s]")

    issued = stamp(t["issued_min"].to_numpy())
    called = stamp((t["issued_min"] + t["wait"]).to_numpy())
    started = stamp((t["issued_min"] + t["wait"] + t["walk"]).to_numpy())
    finished = stamp((t["issued_min"] + t["wait"] + t["walk"] + t["handling"]).to_numpy())
    seq = t.groupby(["branch_id", "day"]).cumcount().to_numpy() + 1
    dates = pd.to_datetime(day0[t["day"].to_numpy()]).strftime("%y%m%d")
    n = len(t)
    customers = _ids(rng, 9000, 12)
    cust = customers[rng.integers(0, len(customers), n)]
    cust = np.where(rng.random(n) < 0.2, "", cust)       # walk-ins without a card
    fmt = "%Y-%m-%d %H:%M:%S"
    out = pd.DataFrame({
        "ticket_id": [f"{b}-{d}-{s:04d}" for b, d, s in zip(t["branch_id"], dates, seq)],
        "branch_id": t["branch_id"].to_numpy(),
        "business_type": np.array(types)[t["btype"].to_numpy()],
        "counter_id": [f"{b}-C{c:02d}" for b, c in zip(t["branch_id"], t["counter"])],
        "channel": np.where(t["appointment"], "appointment", "walk_in"),
        "issued_at": pd.to_datetime(issued).strftime(fmt),
        "called_at": pd.to_datetime(called).strftime(fmt),
        "started_at": pd.to_datetime(started).strftime(fmt),
        "finished_at": pd.to_datetime(finished).strftime(fmt),
        "first_pass": np.where(t["first_pass"], 1, 0),
        "customer_id": cust,
        **({"segment": t["segment"].to_numpy()} if factors else {}),
    }).astype(object)
    expected = _corrupt_process(out, PROCESS_INVALID, rng)
    expected["expected_mean_waiting_minutes"] = {k: round(v, 6) for k, v in expected_wait.items()}
    if factors:
        bank = sum(arrivals[b] * expected_wait[b] for b in arrivals) / sum(arrivals.values())
        expected["segments"] = {
            "shares": {i: round(float(x), 6) for i, x in zip(ids, p)},
            "waiting_factor": {i: round(f, 6) for i, f in factors.items()},
            "waiting_ratio_to_mass": {i: round(f / factors["mass"], 6) for i, f in factors.items()} if "mass" in factors else {},
            "expected_mean_waiting_minutes": {i: round(bank * f, 6) for i, f in factors.items()},
            "expected_mean_waiting_minutes_all": round(bank, 6),
            "note": "segment drawn independently of branch, hour and business type; its wait = the branch-hour's wait x "
                    "waiting_factor (mean 1 over the shares); expected means are arrival-weighted over branches",
        }
    return out, expected


def _corrupt_process(df: pd.DataFrame, plan: dict[str, int], rng: np.random.Generator) -> dict:
    n = len(df)
    total = sum(plan.values())
    rows = rng.choice(np.arange(n // 2, n), total, replace=False)
    originals = iter(rng.permutation(np.setdiff1d(np.arange(n // 2), rows)))
    ts = lambda s: pd.Timestamp(s)  # noqa: E731
    fmt = "%Y-%m-%d %H:%M:%S"
    k = 0
    for reason, count in plan.items():
        for r in rows[k:k + count]:
            if reason == "duplicate_id":           # the queue system exported a ticket twice
                df.iloc[r] = df.iloc[int(next(originals))]
            elif reason == "missing_value":        # a ticket whose customer left before being called
                df.at[r, "called_at"] = ""
                df.at[r, "started_at"] = ""
                df.at[r, "finished_at"] = ""
            elif reason == "called_before_issued":
                df.at[r, "called_at"] = (ts(df.at[r, "issued_at"]) - pd.Timedelta(minutes=int(rng.integers(2, 30)))).strftime(fmt)
            elif reason == "started_before_called":
                df.at[r, "started_at"] = (ts(df.at[r, "called_at"]) - pd.Timedelta(minutes=int(rng.integers(1, 5)))).strftime(fmt)
            elif reason == "finished_before_started":  # the two stamps swapped in the export
                df.at[r, "started_at"], df.at[r, "finished_at"] = df.at[r, "finished_at"], df.at[r, "started_at"]
            elif reason == "absurd_waiting":       # a ticket left open overnight
                called = ts(df.at[r, "issued_at"]) + pd.Timedelta(hours=int(rng.integers(9, 20)))
                handling = ts(df.at[r, "finished_at"]) - ts(df.at[r, "started_at"])
                df.at[r, "called_at"] = called.strftime(fmt)
                df.at[r, "started_at"] = (called + pd.Timedelta(minutes=1)).strftime(fmt)
                df.at[r, "finished_at"] = (called + pd.Timedelta(minutes=1) + handling).strftime(fmt)
            elif reason == "unknown_branch":
                df.at[r, "branch_id"] = "B00"
            else:  # pragma: no cover
                raise ValueError(reason)
        k += count
    return {"tickets": n, "valid": n - total, "invalid": total, "invalid_by_reason": dict(plan)}


def _point_truth(study: Study, quarters) -> dict:
    """Seed §5's truths: customer-information accuracy is the first-pass probability of the named verification type
    (every quarter with a queue log); channel coverage is a census whose counts are :data:`CHANNEL_COVERAGE` (study.yml
    states the same counts: its truth is the counts themselves)."""
    out = {}
    acc = study.information_accuracy
    if acc is not None:
        out["information_accuracy"] = {"business_type": acc.business_type,
                                       "first_pass_probability": FIRST_PASS.get(acc.business_type, 0.82),
                                       "quarters": list(quarters)}
    if study.channel_coverage is not None:
        out["channel_coverage"] = {q: {"covered": c, "total": n, "share": round(c / n, 6)}
                                   for q, (c, n) in CHANNEL_COVERAGE.items() if q in quarters}
    return out


# ---------------------------------------------------------------------------------------------
# Population truths


def _population_truth(study: Study, means, shifts, seed: int) -> dict:
    n = POPULATION_N
    pop = _population_draw(study, BASELINE, n, seed, means, shifts, pilot=False)
    lo, hi = study.questionnaire.scale.min, study.questionnaire.scale.max
    alpha = {}
    for dim, items in study.scales.items():
        x = np.array(pop[items], dtype=float)
        rev = [i for i, it in enumerate(items) if it in study.reverse_items]
        x[:, rev] = lo + hi - x[:, rev]
        alpha[dim] = round(float(cronbach_alpha(np.cov(x, rowvar=False))), 4)
    dims = study.dimension_ids
    y = pop[study.questionnaire.outcomes.overall_satisfaction.column].to_numpy(float)
    X = pop[[f"_score_{d}" for d in dims]].to_numpy()
    lmg = lmg_from_cov(np.cov(np.column_stack([y, X]), rowvar=False))   # outcome first
    total = lmg.sum()
    scores_mean = {d: round(float(pop[f"_score_{d}"].mean()), 3) for d in dims}

    # The pilot's effect on the 0-100 efficiency score and on the outcomes, from paired draws.
    pop_after = _population_draw(study, BASELINE, n, seed, means, shifts, pilot=True)
    measure = study.measures[0] if study.measures else None
    in_pilot = np.isin(pop["_branch"], measure.pilot) if measure else np.ones(n, bool)
    o = study.questionnaire.outcomes
    def nps(r):
        return float(((r >= 9).mean() - (r <= 6).mean()) * 100)
    sc = o.overall_satisfaction.scale
    def top2(s):
        return float((s >= sc.max - 1).mean())
    pa, pb = pop_after[in_pilot], pop[in_pilot]    # the pilot branches' population, with and without the measure
    effects = {
        "efficiency": round(float(pa["_score_efficiency"].mean() - pb["_score_efficiency"].mean()), 3),
        "overall_satisfaction": round(float(pa[o.overall_satisfaction.column].mean() - pb[o.overall_satisfaction.column].mean()), 4),
        "csat_top2": round(top2(pa[o.overall_satisfaction.column]) - top2(pb[o.overall_satisfaction.column]), 4),
        "nps": round(nps(pa[o.recommend.column]) - nps(pb[o.recommend.column]), 3),
    }
    s = pop[o.overall_satisfaction.column]
    return {
        "population_n": n,
        "alpha": alpha,
        "dimension_scores_0_100": scores_mean,
        "overall_satisfaction_0_100": round(float((s.mean() - sc.min) / (sc.max - sc.min) * 100), 3),
        "csat_top2": round(top2(s), 4),
        "nps": round(nps(pop[o.recommend.column]), 3),
        "complaint_rate": round(float(pop[o.complaint.column].mean()), 4),
        "lmg": {
            "outcome": o.overall_satisfaction.column,
            "r2": round(float(total), 4),
            "importance": {d: round(float(v), 5) for d, v in zip(dims, lmg)},
            "share": {d: round(float(v / total), 5) for d, v in zip(dims, lmg)},
            "rank": {d: int(r) for d, r in zip(dims, (-lmg).argsort().argsort() + 1)},
        },
        "pilot_effects_survey": effects,
    }


# ---------------------------------------------------------------------------------------------
# Writing


def _csv_bytes(df: pd.DataFrame, encoding: str) -> bytes:
    text = df.to_csv(index=False, lineterminator="\n")
    return text.encode(encoding)


def _gzip_bytes(data: bytes) -> bytes:
    buf = _io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as fh:
        fh.write(data)
    return buf.getvalue()


def write_sample(study: Study, data_dir: Path | str, quarters: tuple[str, ...] = QUARTERS,
                 seed: int = DEFAULT_SEED) -> dict:
    """Write the sample study's raw files for ``quarters`` (oldest first) and ``truth.json``.

    The baseline is :data:`BASELINE` when among ``quarters`` (else the first); later quarters are after
    the first improvement measure's start. Quarters before :data:`QUEUE_LOG_FROM` ship the survey
    only. Returns the truth that is also written to ``<data_dir>/raw/truth.json``.
    """
    baseline = BASELINE if BASELINE in quarters else quarters[0]
    data_dir = Path(data_dir)
    means = _calibrate_means(study, seed)
    shifts = _calibrate_outcomes(study, means, seed)
    truth: dict = {
        "seed": seed,
        "quarters": list(quarters),
        "baseline": baseline,
        "generator": "study.sample",
        "calibration": {"digest_dimension_scores_0_100": DIGEST_SCORES, "digest_csat_0_100": DIGEST_CSAT_0_100,
                        "latent_means": means, "satisfaction_shift": shifts[0], "recommend_shift": shifts[1]},
        "driver_weights": {"outcome": study.questionnaire.outcomes.overall_satisfaction.column,
                           "latent": "overall = 1 + 4·Σ w·score/100 + shift + N(0, %.2f), cut to 1-5" % SATISFACTION_NOISE_SD,
                           "weights": DRIVER_WEIGHTS},
        "survey": {},
        "process_times": {},
    }
    measure = study.measures[0] if study.measures else None
    for quarter in quarters:
        followup = quarter > baseline
        rng = np.random.default_rng([seed, 100 + _quarter_index(quarter) - _quarter_index(baseline)])
        survey, s_expected = _survey_quarter(study, quarter, 0 if quarter == baseline else 1, followup, rng, means, shifts)
        qdir = io.raw_dir(data_dir, quarter)
        # Surveys up to the baseline are Chinese spreadsheet exports (GB18030); the follow-up UTF-8 with BOM.
        io.write_bytes(_csv_bytes(survey, "gb18030" if quarter <= baseline else "utf-8-sig"), qdir / "survey.csv")
        truth["survey"][quarter] = s_expected
        if quarter < QUEUE_LOG_FROM:
            continue
        tickets, p_expected = _tickets_quarter(study, quarter, followup, rng, seed)
        bench = pd.DataFrame([(bank, metric, value) for bank, vals in BENCHMARK.items() for metric, value in vals.items()],
                             columns=["bank", "metric", "value"])
        io.write_bytes(_gzip_bytes(_csv_bytes(tickets, "utf-8")), qdir / "process_times.csv.gz")
        io.write_bytes(_csv_bytes(bench, "utf-8"), qdir / "benchmark.csv")
        truth["process_times"][quarter] = p_expected
        # The request log (study.sample.requests) of the last two quarters (the report's baseline and follow-up,
        # keeping the repository small however many quarters there are); the AI assistant starts in the last one.
        qi = quarters.index(quarter) - (len(quarters) - 2)  # 0: the report's baseline, 1: its follow-up
        if study.has_requests and qi >= 0:
            from study.sample.requests import launch_plan, requests_quarter

            launch, ai_channels = launch_plan(study, quarter) if qi == 1 else (None, None)
            reqs, r_expected = requests_quarter(study, quarter, np.random.default_rng([seed, 300 + qi]), launch,
                                                p_expected["valid"], ai_channels)
            io.write_bytes(_gzip_bytes(_csv_bytes(reqs, "utf-8")), qdir / "service_requests.csv.gz")
            truth.setdefault("service_requests", {})[quarter] = r_expected
    if study.information_accuracy is not None or study.channel_coverage is not None:   # seed §5 (issue 12)
        truth["point_service"] = _point_truth(study, [q for q in quarters if q >= QUEUE_LOG_FROM])
    truth["population"] = _population_truth(study, means, shifts, seed)
    truth["tracking"] = _tracking_truth(study, quarters, means, shifts, seed)
    if measure is not None:
        base_w = truth["process_times"][baseline]["expected_mean_waiting_minutes"]
        after_w = truth["process_times"][quarters[-1]]["expected_mean_waiting_minutes"]
        pilot_before = float(np.mean([base_w[b] for b in measure.pilot]))
        pilot_after = float(np.mean([after_w[b] for b in measure.pilot]))
        truth["measure"] = {
            "id": measure.id, "start": measure.start.isoformat(), "pilot": measure.pilot, "control": measure.control,
            "waiting_relative_change_pilot": PILOT_WAITING_CHANGE,
            "waiting_relative_change_control": 0.0,
            "waiting_minutes_pilot_before": round(pilot_before, 4),
            "waiting_minutes_pilot_after": round(pilot_after, 4),
            "waiting_minutes_did": round(pilot_after - pilot_before, 4),
            "efficiency_latent_shift": PILOT_EFFICIENCY_SHIFT,
            "survey_effects_pilot": truth["population"]["pilot_effects_survey"],
            "survey_effects_control": {k: 0.0 for k in truth["population"]["pilot_effects_survey"]},
            "note": "waiting: every pilot wait after the start is multiplied by 1 + change (the mean branch-level expected "
                    "waits are arrival-weighted Erlang C values plus the call delay); survey effects are population "
                    "differences from paired draws of the generator.",
        }
    text = json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    io.write_bytes(text.encode("utf-8"), data_dir / "raw" / "truth.json")
    return truth


def write_process_log(study: Study, data_dir: Path | str, quarter: str, n_tickets: int, **kwargs) -> list[Path]:
    """Stream a large processed process-time log as Parquet parts (see :mod:`study.sample.log`)."""
    from study.sample.log import write_process_log as _write

    return _write(study, data_dir, quarter, n_tickets, **kwargs)
