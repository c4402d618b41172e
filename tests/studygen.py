"""Random valid studies of varied shape, for tests: ``make_study(seed, tmp_dir) -> GeneratedStudy``.

A generated study is a folder with ``study.yml`` and ``data/raw/<QUARTER>/`` files for 1-3
consecutive quarters, everything drawn from ``seed`` (the same seed gives the same bytes). The
shape varies: data sources (survey only / + process times / + benchmark / both), 1-12 dimensions
of 2-5 items (some reverse-keyed), item and outcome scales (0-10, 1-7, 1-5, each outcome its own),
recommend and complaint present or absent, 1-60 branches (names sometimes long Chinese), 0-3
segments and channels, 0-5 business types, 0-4 improvement measures whose start dates fall
anywhere relative to the quarters (planned, inside the current quarter, first day of a quarter,
inside or before the baseline) with and without control branches, 0-5 competitors on 1-6
benchmark metrics, SQI and targets present or absent, and sample sizes from 1 to thousands. About a
third of the studies also have a service-request log (issue 12): 1-6 contact channels (some digital),
0-3 complaint grades, 0-2 response targets, a rating scale or none, visits from queue tickets and/or
digital sessions, 0-1 channel measure with claims, targets on request metrics, 1 to thousands of
requests per quarter (drawn from a separate random stream, so the other parts of a seed's study are
the same as before the request log existed); the overrides ``requests`` (bool) and ``n_requests`` fix them.

Data come from a small latent model, so the statistics have something to find: a general factor
drives correlated dimension scores; overall satisfaction is a weighted sum of the dimension scores
plus noise; recommend follows satisfaction; complaint is likelier when satisfaction is low; queue
waits and handling times vary by branch and business type; pilot branches of a measure that started
improve after its start. A few rows per file are made invalid in ways the validator rejects (never
every row).

``optional``: the study.yml contract. ``False`` restricts the generator to what the schema on main
accepted before the optional-sections change (every section present, every data file present in
every quarter); ``True`` uses the contract after it (segments, channels, ticket_channels,
business_types, sqi, targets, measures may be empty or absent; service_level, benchmark and
outcomes.recommend may be absent; process and benchmark files optional per quarter; ``timezone``).
``OPTIONAL_SECTIONS`` is the default.

This lives in tests/ rather than the package: it is a test tool (its data are random and
deliberately include invalid rows), and it imports nothing from the package except to compute
nothing -- it writes files only, so the toolkit reads them exactly as a user's study.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# The study.yml contract the generator writes for (see the module docstring).
OPTIONAL_SECTIONS = True

SCALES = [(1, 5), (1, 7), (0, 10)]
PROCESS_METRIC_IDS = ["waiting_minutes", "handling_minutes", "cycle_minutes", "first_pass_yield", "within_service_level"]
LOWER_BETTER = {"waiting_minutes", "handling_minutes", "cycle_minutes", "complaint_rate"}

DIM_POOL = [
    ("professionalism", "Professional competence", "专业能力"), ("problem_handling", "Handling of complex problems", "复杂问题处理"),
    ("explanation", "Clarity of product explanation", "产品讲解清晰度"), ("attitude", "Friendliness of attitude", "服务态度"),
    ("efficiency", "Business handling efficiency", "业务办理效率"), ("innovation", "Innovation capability", "创新能力"),
    ("environment", "Branch environment", "网点环境"), ("responsiveness", "Response speed", "响应速度"),
    ("channel_ease", "Channel ease of use", "渠道便捷性"), ("retention", "Retention service", "客户维护"),
    ("security", "Security and privacy", "安全与隐私"), ("fairness", "Fair pricing", "收费合理"),
    ("digital", "Digital services", "数字服务"), ("empathy", "Empathy", "共情能力"),
]
CITIES = ["北京市", "上海市", "广州市", "深圳市", "成都市", "杭州市", "武汉市", "西安市", "南京市", "重庆市"]
BANKS_ZH = ["中国工商银行股份有限公司", "中国建设银行股份有限公司", "中国农业银行股份有限公司", "招商银行股份有限公司"]
DISTRICTS = ["朝阳", "海淀", "浦东", "天河", "福田", "武侯", "西湖", "江汉", "雁塔", "鼓楼", "渝中", "东城"]
BRANCH_EN = ["Central", "Riverside", "University", "Harbour", "Old Town", "Science Park", "Station", "Lakeside",
             "Airport", "Market Street", "Hillside", "New District"]
SEGMENTS = [("mass", "Mass", "大众客户"), ("affluent", "Affluent", "贵宾客户"), ("private_banking", "Private banking", "私人银行客户")]
CHANNELS = [("branch", "Branch", "网点"), ("online_banking", "Online banking", "网上银行"), ("mobile_banking", "Mobile banking", "手机银行")]
TICKET_CHANNELS = [("walk_in", "Walk-in", "现场取号"), ("appointment", "Appointment", "预约取号")]
BUSINESS = [("account_opening", "Account opening", "开户", 15), ("deposit", "Deposit and withdrawal", "存取款", 10),
            ("loan_enquiry", "Loan enquiry", "贷款咨询", 5), ("wealth_management", "Wealth management", "理财业务", 15),
            ("info_verification", "Customer information verification", "客户信息核验", 20)]
BENCH_METRICS = [("handling_time", "Average handling time", "平均办理时间", "min", "lower", (3, 9)),
                 ("experience_score", "Customer experience score", "客户体验评分", "score (1-10)", "higher", (6, 9.5)),
                 ("online_coverage", "Online business coverage", "线上业务覆盖率", "%", "higher", (70, 99)),
                 ("value_added_services", "Value-added services", "增值服务数量", "count", "higher", (5, 20)),
                 ("complaint_rate_bench", "Complaints per 10,000 customers", "万人投诉量", "count", "lower", (1, 12)),
                 ("app_rating", "Mobile app rating", "手机银行评分", "stars", "higher", (3, 5))]
COMPETITORS = ["Bank A", "Bank B", "Bank C", "招商银行", "Bank E"]
COMPETITORS_ZH = {"Bank A": "A银行", "Bank B": "B银行", "Bank C": "C银行", "招商银行": "招商银行", "Bank E": "E银行"}
BENCH_UNITS_ZH = {"min": "分钟", "score (1-10)": "分（1–10分制）", "%": "%", "count": "个", "stars": "星（1–5星）"}
MEASURE_NAMES = [("smart_queue", "Appointment booking and smart queue management"), ("staff_training", "Staff service training"),
                 ("paperless", "Paperless forms"), ("wealth_desk", "Dedicated wealth-management desk"),
                 ("mobile_push", "Maturity reminders in mobile banking")]
MEASURE_NAMES_ZH = {"smart_queue": "预约取号与智能排队", "staff_training": "员工服务培训", "paperless": "无纸化表单",
                    "wealth_desk": "理财专柜", "mobile_push": "手机银行到期提醒"}
START_KINDS = ("planned", "current_inside", "quarter_first_day", "baseline_inside", "before_baseline")


def _quarter_bounds(q: str) -> tuple[dt.date, dt.date]:
    year, n = int(q[:4]), int(q[-1])
    start = dt.date(year, 3 * n - 2, 1)
    end = dt.date(year + (n == 4), (3 * n) % 12 + 1, 1) - dt.timedelta(days=1)
    return start, end


def _next_quarter(q: str) -> str:
    year, n = int(q[:4]), int(q[-1])
    return f"{year + (n == 4)}Q{n % 4 + 1}"


@dataclass
class MeasureShape:
    id: str
    start: dt.date
    start_kind: str
    pilot: list[str]
    control: list[str]
    metrics: list[str]


@dataclass
class GeneratedStudy:
    """Where a generated study is and what shape it has (the facts report checks compare against)."""

    seed: int
    root: Path
    study_file: Path
    data_dir: Path
    optional: bool
    quarters: list[str]
    sources: dict[str, set[str]]          # quarter -> datasets with a raw file
    item_scale: tuple[int, int]
    satisfaction_scale: tuple[int, int]
    recommend_scale: tuple[int, int] | None
    complaint: bool
    dimensions: list[str]
    items_per_dimension: dict[str, int]
    reverse_items: list[str]
    branches: list[str]
    long_branch_names: bool
    segments: list[str]
    channels: list[str]
    business_types: list[str]
    measures: list[MeasureShape]
    competitors: list[str]
    benchmark_metrics: list[str]
    has_sqi: bool
    has_targets: bool
    has_service_level: bool
    n_survey: dict[str, int]              # rows written per quarter (valid + invalid)
    n_survey_invalid: dict[str, int]
    n_tickets: dict[str, int]
    n_tickets_invalid: dict[str, int]
    definition: dict = field(repr=False, default_factory=dict)
    request_channels: list[str] = field(default_factory=list)   # empty: the study has no request log
    n_requests: dict[str, int] = field(default_factory=dict)    # rows written per quarter (valid + invalid)
    n_requests_invalid: dict[str, int] = field(default_factory=dict)

    @property
    def sampling(self) -> bool:
        """Whether the study declares a sampling design (issue 13)."""
        return "sampling" in self.definition

    @property
    def current(self) -> str:
        return self.quarters[-1]

    @property
    def baseline(self) -> str:
        return self.quarters[-2] if len(self.quarters) > 1 else ""

    @property
    def study_sources(self) -> set[str]:
        """Data sources the study has in any quarter."""
        return set().union(*self.sources.values())

    @property
    def nps_defined(self) -> bool:
        return self.recommend_scale == (0, 10)

    def describe(self) -> str:
        """One line naming the shape, for test ids and findings."""
        src = "+".join(sorted(self.study_sources - {"survey"})) or "survey-only"
        rec = "none" if self.recommend_scale is None else f"{self.recommend_scale[0]}-{self.recommend_scale[1]}"
        ms = ",".join(f"{m.start_kind}{'' if m.control else '/pilot-only'}" for m in self.measures) or "-"
        return (f"seed={self.seed} q={len(self.quarters)} src={src} dims={len(self.dimensions)} "
                f"items={self.item_scale[0]}-{self.item_scale[1]} sat={self.satisfaction_scale[0]}-{self.satisfaction_scale[1]} "
                f"rec={rec} complaint={int(self.complaint)} branches={len(self.branches)} seg={len(self.segments)} "
                f"chn={len(self.channels)} bt={len(self.business_types)} measures=[{ms}] comp={len(self.competitors)} "
                f"bm={len(self.benchmark_metrics)} sqi={int(self.has_sqi)} targets={int(self.has_targets)} "
                f"n={[self.n_survey[q] for q in self.quarters]} tickets={[self.n_tickets.get(q, 0) for q in self.quarters]}")


# ---------------------------------------------------------------------------------------------
# Drawing the shape


def _survey_size(rng: np.random.Generator) -> int:
    r = rng.random()
    if r < 0.04:
        return 1
    if r < 0.08:
        return 2
    if r < 0.30:
        return int(rng.integers(5, 41))
    if r < 0.45:
        return int(rng.choice([132, 146]))
    if r < 0.97:
        return int(rng.integers(150, 900))
    return int(rng.integers(1000, 3000))


def _ticket_count(rng: np.random.Generator) -> int:
    r = rng.random()
    if r < 0.05:
        return int(rng.integers(1, 5))
    if r < 0.30:
        return int(rng.integers(5, 200))
    if r < 0.95:
        return int(rng.integers(200, 3000))
    return int(rng.integers(3000, 12000))


def _branch_name(rng, i: int, long: bool) -> tuple[str, str]:
    district = DISTRICTS[i % len(DISTRICTS)] + (str(i // len(DISTRICTS)) if i >= len(DISTRICTS) else "")
    en = BRANCH_EN[i % len(BRANCH_EN)] + (f" {i // len(BRANCH_EN) + 1}" if i >= len(BRANCH_EN) else "")
    if long:
        city = CITIES[int(rng.integers(len(CITIES)))]
        bank = BANKS_ZH[int(rng.integers(len(BANKS_ZH)))]
        zh = f"{bank}{city}分行{district}支行营业部"
        return zh, zh   # a long Chinese name as the display name too
    return en, f"{district}支行"


def _metric_pool(dims: list[str], has_process: bool, recommend, complaint: bool) -> list[str]:
    pool = ["overall_satisfaction", "csat_mean_0_100", "csat_top2"] + list(dims)
    if recommend == (0, 10):
        pool.append("nps")
    if complaint:
        pool.append("complaint_rate")
    if has_process:
        pool += PROCESS_METRIC_IDS
    return pool


def _weights(rng, k: int) -> list[float]:
    """k positive weights with two decimals summing exactly to 1."""
    cuts = np.sort(rng.choice(np.arange(1, 100), k - 1, replace=False)) if k > 1 else np.array([], int)
    parts = np.diff(np.concatenate([[0], cuts, [100]]))
    return [round(int(p) / 100, 2) for p in parts]


def _measure_start(rng, kind: str, quarters: list[str]) -> dt.date:
    first_q0, _ = _quarter_bounds(quarters[0])
    cur_start, cur_end = _quarter_bounds(quarters[-1])
    if kind == "planned":
        return cur_end + dt.timedelta(days=int(rng.integers(1, 90)))
    if kind == "current_inside":
        return cur_start + dt.timedelta(days=int(rng.integers(1, (cur_end - cur_start).days)))
    if kind == "quarter_first_day":
        return _quarter_bounds(quarters[int(rng.integers(len(quarters)))])[0]
    if kind == "baseline_inside" and len(quarters) > 1:
        b0, b1 = _quarter_bounds(quarters[-2])
        return b0 + dt.timedelta(days=int(rng.integers(1, (b1 - b0).days)))
    return first_q0 - dt.timedelta(days=int(rng.integers(1, 200)))   # before the baseline (or the only quarter)


# ---------------------------------------------------------------------------------------------
# The generator


def make_study(seed: int, tmp_dir: Path | str, optional: bool | None = None, **overrides) -> GeneratedStudy:
    """Write a random valid study into ``tmp_dir`` (study.yml, data/raw/<Q>/...) and describe it.

    ``overrides`` fix parts of the shape instead of drawing them: ``n_quarters``, ``sources`` (set
    of "process_times"/"benchmark"), ``n_dimensions``, ``item_scale``, ``satisfaction_scale``,
    ``recommend_scale`` (a pair or None), ``complaint``, ``n_branches``, ``long_names``,
    ``n_segments``, ``n_channels``, ``n_business_types``, ``measure_starts`` (list of START_KINDS),
    ``controls`` (bool), ``n_competitors``, ``n_benchmark_metrics``, ``sqi``, ``targets``,
    ``n_survey`` (int or list per quarter), ``n_tickets``, ``invalid`` (bool), ``sampling`` (bool: declare
    a sampling design with branch population sizes, and sometimes tracking; drawn when not given), ``points``
    (bool: declare seed §5's channel coverage and, with business types, information accuracy, with targets).
    """
    optional = OPTIONAL_SECTIONS if optional is None else optional
    unknown = set(overrides) - {"sampling", "n_quarters", "sources", "n_dimensions", "item_scale", "satisfaction_scale",
                                "recommend_scale", "complaint", "n_branches", "long_names", "n_segments", "n_channels",
                                "n_business_types", "measure_starts", "controls", "n_competitors", "n_benchmark_metrics",
                                "sqi", "targets", "n_survey", "n_tickets", "invalid", "requests", "n_requests", "points"}
    if unknown:
        raise TypeError(f"unknown override(s): {sorted(unknown)}")
    rng = np.random.default_rng([seed, 20250401])
    ov = overrides.get
    root = Path(tmp_dir)
    root.mkdir(parents=True, exist_ok=True)

    # -- quarters and sources -------------------------------------------------------------------
    nq = ov("n_quarters") or int(rng.choice([1, 2, 2, 2, 3]))
    q = f"{int(rng.integers(2023, 2026))}Q{int(rng.integers(1, 5))}"
    quarters = [q]
    for _ in range(nq - 1):
        quarters.append(_next_quarter(quarters[-1]))
    if optional:
        study_sources = ov("sources")
        if study_sources is None:
            study_sources = {("",), ("process_times",), ("benchmark",), ("process_times", "benchmark")}
            study_sources = set(list(sorted(study_sources))[int(rng.integers(4))]) - {""}
        study_sources = set(study_sources)
    else:
        study_sources = {"process_times", "benchmark"}
    sources = {qq: {"survey"} | study_sources for qq in quarters}
    if optional and len(quarters) > 1 and study_sources and rng.random() < 0.25:
        # a source missing from one earlier quarter (files are optional per quarter)
        sources[quarters[int(rng.integers(len(quarters) - 1))]].discard(sorted(study_sources)[int(rng.integers(len(study_sources)))])
    has_process = "process_times" in study_sources
    has_bench = "benchmark" in study_sources

    # -- questionnaire --------------------------------------------------------------------------
    n_dims = ov("n_dimensions") or int(rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 12], p=[.08, .1, .12, .14, .14, .12, .12, .1, .08]))
    dims = [DIM_POOL[i] for i in sorted(rng.choice(len(DIM_POOL), n_dims, replace=False))]
    item_scale = tuple(ov("item_scale") or SCALES[int(rng.integers(3))])
    sat_scale = tuple(ov("satisfaction_scale") or SCALES[int(rng.integers(3))])
    if "recommend_scale" in overrides:
        rec_scale = overrides["recommend_scale"]
        rec_scale = tuple(rec_scale) if rec_scale is not None else None
    else:
        r = rng.random()
        rec_scale = (0, 10) if r < 0.6 else SCALES[int(rng.integers(2))] if (r < 0.8 or not optional) else None
    complaint = ov("complaint") if "complaint" in overrides else bool(rng.random() < 0.6)
    items, reverse, per_dim = [], [], {}
    for did, dlabel, dzh in dims:
        k = int(rng.integers(2, 6))
        per_dim[did] = k
        for j in range(k):
            iid = f"{did[:4]}{j + 1}"
            rev = bool(k >= 3 and rng.random() < 0.12)
            items.append({"id": iid, "dimension": did, "label": f"{dlabel}: statement {j + 1}" + (" (negatively worded)" if rev else ""),
                          "label_zh": f"{dzh}{j + 1}", **({"reverse": True} if rev else {})})
            if rev:
                reverse.append(iid)
    # ids must be unique: prefixes of the pool are distinct in their first three letters? make sure
    assert len({i["id"] for i in items}) == len(items), "item ids clash; change DIM_POOL"
    outcomes = {"overall_satisfaction": {"column": "overall_satisfaction", "label": "Overall satisfaction", "label_zh": "总体满意度",
                                         "scale": {"min": sat_scale[0], "max": sat_scale[1]}}}
    if rec_scale is not None:
        outcomes["recommend"] = {"column": "recommend", "label": "Likelihood to recommend", "label_zh": "推荐意愿",
                                 "scale": {"min": rec_scale[0], "max": rec_scale[1]}}
    if complaint:
        outcomes["complaint"] = {"column": "complaint", "label": "Filed a complaint in the past three months",
                                 "label_zh": "近三个月是否投诉", "scale": {"min": 0, "max": 1}}

    # -- categories and branches ----------------------------------------------------------------
    lo_cat = 0 if optional else 1
    n_seg = ov("n_segments") if ov("n_segments") is not None else int(rng.integers(lo_cat, 4))
    n_chn = ov("n_channels") if ov("n_channels") is not None else int(rng.integers(lo_cat, 4))
    segments, channels = SEGMENTS[:n_seg], CHANNELS[:n_chn]
    n_branches = ov("n_branches") or int(rng.choice([1, 2, 3, int(rng.integers(4, 13)), int(rng.integers(13, 61))],
                                                    p=[.08, .08, .09, .5, .25]))
    long_names = ov("long_names") if "long_names" in overrides else bool(rng.random() < 0.3)
    id_style = int(rng.integers(3))
    branches = []
    for i in range(n_branches):
        bid = [f"B{i + 1:02d}", f"BR-{i + 1:04d}", f"{110000 + 7 * i}"][id_style]
        name, name_zh = _branch_name(rng, i, long_names)
        branches.append({"id": bid, "name": name, "name_zh": name_zh, "counters": int(rng.integers(1, 10))})
    branch_ids = [b["id"] for b in branches]
    if has_process:
        n_bt = ov("n_business_types") or int(rng.integers(1, 6))
    else:
        n_bt = ov("n_business_types") if ov("n_business_types") is not None else int(rng.integers(0 if optional else 1, 6))
    btypes = []
    for bid, blabel, bzh, std in BUSINESS[:n_bt]:
        btypes.append({"id": bid, "label": blabel, "label_zh": bzh, "standard_minutes": std,
                       "ideal_cycle_minutes": std + int(rng.integers(5, 15))})
    ticket_channels = TICKET_CHANNELS if (not optional or rng.random() < 0.6) else []
    has_service_level = has_process or not optional
    dim_ids = [d[0] for d in dims]
    pool = _metric_pool(dim_ids, has_process, rec_scale, complaint)

    # -- SQI and targets ------------------------------------------------------------------------
    has_sqi = ov("sqi") if "sqi" in overrides else (not optional or rng.random() < 0.7)
    sqi = []
    if has_sqi:
        sqi_pool = [m for m in pool if m not in ("overall_satisfaction",)]
        chosen = list(rng.choice(sqi_pool, int(rng.integers(1, min(6, len(sqi_pool)) + 1)), replace=False))
        for m, w in zip(chosen, _weights(rng, len(chosen))):
            lo, hi = _sqi_range(m)
            sqi.append({"id": str(m), "label": _metric_label(m, dims), "label_zh": _metric_label_zh(m, dims),
                        "source": "process" if m in PROCESS_METRIC_IDS else "survey",
                        "weight": w, "direction": "lower" if m in LOWER_BETTER else "higher", "min": lo, "max": hi,
                        "unit": _metric_unit(m)})
    has_targets = ov("targets") if "targets" in overrides else bool(rng.random() < 0.6)
    targets = []
    if has_targets:
        for k, m in enumerate(rng.choice(pool, int(rng.integers(1, 5)), replace=False)):
            m = str(m)
            kind = str(rng.choice(["level", "change", "relative_change"]))
            op = "<=" if m in LOWER_BETTER else ">="
            value = _target_value(m, kind, rng, item_scale, sat_scale)
            targets.append({"id": f"t{k + 1}_{m}", "label": f"{_metric_label(m, dims)} target",
                            "label_zh": f"{_metric_label_zh(m, dims)}目标", "metric": m,
                            "kind": kind, "operator": op, "value": value})

    # -- measures -------------------------------------------------------------------------------
    starts = ov("measure_starts")
    if starts is None:
        n_meas = int(rng.choice([0, 1, 1, 2, 3, 4])) if optional else int(rng.choice([0, 1, 1, 2, 3, 4]))
        starts = [str(rng.choice(START_KINDS)) for _ in range(n_meas)]
    measures, measure_shapes = [], []
    for k, kind in enumerate(starts):
        mid, mname = MEASURE_NAMES[k % len(MEASURE_NAMES)]
        start = _measure_start(rng, kind, quarters)
        perm = list(rng.permutation(branch_ids))
        n_pilot = max(1, int(round(len(perm) * rng.uniform(0.2, 0.5))))
        pilot = perm[:n_pilot]
        want_control = overrides["controls"] if "controls" in overrides else bool(rng.random() < 0.65)
        rest = perm[n_pilot:]
        control = rest[:max(1, int(round(len(rest) * rng.uniform(0.3, 1.0))))] if (want_control and rest) else []
        metrics = [str(m) for m in rng.choice(pool, int(rng.integers(1, min(6, len(pool)) + 1)), replace=False)]
        measures.append({"id": mid, "name": mname, "name_zh": MEASURE_NAMES_ZH[mid], "start": start,
                         "description": f"{mname} in the pilot branches.",
                         "description_zh": f"在试点网点实施{MEASURE_NAMES_ZH[mid]}。", "pilot": [str(b) for b in pilot],
                         "control": [str(b) for b in control], "metrics": metrics})
        measure_shapes.append(MeasureShape(mid, start, kind, [str(b) for b in pilot], [str(b) for b in control], metrics))

    # -- benchmark ------------------------------------------------------------------------------
    competitors, bench_metrics, benchmark = [], [], None
    if has_bench or not optional:
        n_comp = ov("n_competitors") if ov("n_competitors") is not None else int(rng.integers(0, 6))
        competitors = COMPETITORS[:n_comp]
        n_bm = ov("n_benchmark_metrics") or int(rng.integers(1, 7))
        chosen = [BENCH_METRICS[i] for i in sorted(rng.choice(len(BENCH_METRICS), n_bm, replace=False))]
        bench_metrics = [c[0] for c in chosen]
        benchmark = {"our_bank": str(rng.choice(["Our bank", "本行"])), "our_bank_zh": "本行",
                     "banks_zh": {b: COMPETITORS_ZH[b] for b in competitors},
                     "metrics": [{"id": c[0], "label": c[1], "label_zh": c[2], "unit": c[3], "unit_zh": BENCH_UNITS_ZH[c[3]],
                                  "direction": c[4], "weight": w}
                                 for c, w in zip(chosen, _weights(rng, n_bm))]}

    # -- study.yml ------------------------------------------------------------------------------
    cat = lambda xs: [{"id": a, "label": b, "label_zh": c} for a, b, c in xs]  # noqa: E731
    definition: dict = {
        "name": f"Random study {seed}", "name_zh": f"随机研究{seed}", "organisation": "Test Bank", "organisation_zh": "测试银行",
        "min_cell_size": int(rng.choice([1, 5, 10, 10, 20])), "alpha": float(rng.choice([0.05, 0.05, 0.01, 0.10])),
        "questionnaire": {"scale": {"min": item_scale[0], "max": item_scale[1]},
                          "dimensions": [{"id": a, "label": b, "label_zh": c} for a, b, c in dims],
                          "items": items, "outcomes": outcomes},
    }
    if optional and rng.random() < 0.3:
        definition["timezone"] = str(rng.choice(["Asia/Shanghai", "Asia/Hong_Kong", "Europe/Berlin"]))
    for key, value in (("segments", cat(segments)), ("channels", cat(channels)), ("ticket_channels", cat(ticket_channels))):
        if value or not optional or rng.random() < 0.3:   # absent or an empty list: both allowed after the change
            definition[key] = value
    definition["branches"] = branches
    if btypes or not optional or rng.random() < 0.3:
        definition["business_types"] = btypes
    if has_service_level:
        definition["service_level"] = {"waiting_target_minutes": int(rng.choice([5, 10, 15])),
                                       "target_share": float(rng.choice([0.8, 0.85, 0.9])),
                                       "opening_hours": {"open": 9, "close": int(rng.choice([16, 17, 18]))}}
    if sqi or not optional or rng.random() < 0.3:
        definition["sqi"] = sqi
    if targets or not optional or rng.random() < 0.3:
        definition["targets"] = targets
    if measures or not optional or rng.random() < 0.3:
        definition["measures"] = measures
    # -- the service-request log (its own random stream: the draws above stay as they were) ------------
    rrng = np.random.default_rng([seed, 12])
    want_requests = overrides["requests"] if "requests" in overrides else bool(optional and rrng.random() < 0.35)
    req_section = _request_section(rrng, quarters, has_process, definition.get("targets", []), dims) if want_requests else None
    if req_section is not None:
        definition["service_requests"], extra_targets = req_section
        if extra_targets:
            definition["targets"] = list(definition.get("targets", [])) + extra_targets
        req_quarters = [qq for qq in quarters if not (len(quarters) > 1 and qq == quarters[0] and rrng.random() < 0.25)]
        for qq in req_quarters:
            sources[qq].add("service_requests")
    definition.update(_points(seed, optional, quarters, definition, overrides.get("points")))
    if benchmark is not None:
        definition["benchmark"] = benchmark
    definition.update(_sampling(seed, optional, branch_ids, quarters, overrides.get("sampling")))
    study_file = root / "study.yml"
    study_file.write_text("# generated by tests/studygen.py\n" + yaml.safe_dump(definition, allow_unicode=True, sort_keys=False),
                          encoding="utf-8")

    # -- data -----------------------------------------------------------------------------------
    data_dir = root / "data"
    n_survey, n_survey_bad, n_tk, n_tk_bad, n_rq, n_rq_bad = {}, {}, {}, {}, {}, {}
    n_survey_ov = ov("n_survey")
    latent = _Latent(rng, dim_ids, item_scale)
    branch_quality = dict(zip(branch_ids, rng.normal(0, 0.3, len(branch_ids))))
    for qi, qq in enumerate(quarters):
        rdir = data_dir / "raw" / qq
        rdir.mkdir(parents=True, exist_ok=True)
        n = (n_survey_ov[qi] if isinstance(n_survey_ov, (list, tuple)) else n_survey_ov) or _survey_size(rng)
        survey, bad = _survey(rng, qq, n, latent, items, reverse, item_scale, sat_scale, rec_scale, complaint,
                              branch_ids, branch_quality, [s[0] for s in segments], [c[0] for c in channels], measures,
                              overrides.get("invalid", True))
        _write_csv(rng, survey, rdir / "survey.csv")
        n_survey[qq], n_survey_bad[qq] = n, bad
        if "process_times" in sources[qq]:
            m = ov("n_tickets") or _ticket_count(rng)
            tickets, bad = _tickets(rng, seed, qq, m, branches, btypes, [c[0] for c in ticket_channels],
                                    definition.get("service_level"), measures, overrides.get("invalid", True))
            _write_csv(rng, tickets, rdir / ("process_times.csv.gz" if rng.random() < 0.3 else "process_times.csv"))
            n_tk[qq], n_tk_bad[qq] = m, bad
        if "benchmark" in sources[qq]:
            _write_csv(rng, _benchmark(rng, benchmark, competitors, overrides.get("invalid", True)), rdir / "benchmark.csv")
        if "service_requests" in sources[qq]:
            k = ov("n_requests") or _request_count(rrng)
            reqs, bad = _requests(rrng, qq, k, definition["service_requests"], branch_ids, overrides.get("invalid", True))
            _write_csv(rrng, reqs, rdir / ("service_requests.csv.gz" if rrng.random() < 0.3 else "service_requests.csv"))
            n_rq[qq], n_rq_bad[qq] = k, bad

    return GeneratedStudy(
        seed=seed, root=root, study_file=study_file, data_dir=data_dir, optional=optional, quarters=quarters, sources=sources,
        item_scale=item_scale, satisfaction_scale=sat_scale, recommend_scale=rec_scale, complaint=complaint,
        dimensions=dim_ids, items_per_dimension=per_dim, reverse_items=reverse, branches=branch_ids,
        long_branch_names=long_names, segments=[s[0] for s in segments], channels=[c[0] for c in channels],
        business_types=[b["id"] for b in btypes], measures=measure_shapes, competitors=competitors,
        benchmark_metrics=bench_metrics, has_sqi=bool(sqi), has_targets=bool(targets), has_service_level=has_service_level,
        n_survey=n_survey, n_survey_invalid=n_survey_bad, n_tickets=n_tk, n_tickets_invalid=n_tk_bad, definition=definition,
        request_channels=[c["id"] for c in definition["service_requests"]["channels"]] if req_section else [],
        n_requests=n_rq, n_requests_invalid=n_rq_bad)


def _points(seed: int, optional: bool, quarters: list[str], definition: dict, force: bool | None) -> dict:
    """Seed §5's ``channel_coverage`` (counts for some quarters, census or sample, 1 to thousands of units) and, when
    the study has business types, ``information_accuracy`` on one of them, each with a level target, for about a
    third of the studies with optional sections, from their own random stream (the other draws stay as they were).
    Adds the targets to ``definition`` in place; returns the sections."""
    prng = np.random.default_rng([seed, 14])
    if not (force if force is not None else (optional and prng.random() < 0.35)):
        return {}
    out: dict = {}
    counts = {}
    for q in quarters:
        if prng.random() < 0.8 or q == quarters[-1] and not counts and prng.random() < 0.5:
            total = int(prng.choice([1, 2, 10, 48, 300, 5000]))
            counts[q] = {"covered": int(prng.binomial(total, prng.uniform(0.7, 1.0))), "total": total}
    if counts:
        out["channel_coverage"] = {"unit": str(prng.choice(["target areas", "communities", "customers"])),
                                   "unit_zh": "目标单位", "census": bool(prng.random() < 0.6), "quarters": counts}
    new = []
    if out:
        new.append({"id": "t_coverage", "label": "Channel coverage target", "label_zh": "渠道覆盖率目标",
                    "metric": "channel_coverage", "kind": "level", "operator": ">=", "value": float(prng.choice([0.8, 0.9]))})
    btypes = definition.get("business_types") or []
    if btypes and definition.get("service_level") and prng.random() < 0.7:
        out["information_accuracy"] = {"business_type": str(btypes[int(prng.integers(len(btypes)))]["id"])}
        new.append({"id": "t_accuracy", "label": "Information accuracy target", "label_zh": "信息准确率目标",
                    "metric": "information_accuracy", "kind": "level", "operator": ">=", "value": 0.95})
    if new:
        definition["targets"] = list(definition.get("targets", [])) + new
    return out


def _sampling(seed: int, optional: bool, branch_ids: list[str], quarters: list[str], force: bool | None) -> dict:
    """study.yml ``sampling`` (strata = branches with population sizes, sometimes per quarter) and ``tracking``
    for about a third of the studies with optional sections, from their own random stream (issue 13), so the
    other draws of a seed stay as they were."""
    srng = np.random.default_rng([seed, 13])
    if not (force if force is not None else (optional and srng.random() < 0.35)):
        return {}
    sizes = {b: int(srng.integers(800, 60_000)) for b in branch_ids}
    sampling: dict = {"strata": "branch_id", "population": sizes}
    if len(quarters) > 1 and srng.random() < 0.5:
        q = quarters[-1]
        sampling["population_by_quarter"] = {q: {b: int(v * srng.uniform(0.8, 1.2)) + 1 for b, v in sizes.items()}}
    out = {"sampling": sampling}
    if srng.random() < 0.6:
        out["tracking"] = {"chart_baseline": [quarters[0], quarters[int(srng.integers(len(quarters)))]]}
    return out


def _metric_label(m: str, dims) -> str:
    for did, label, _ in dims:
        if did == m:
            return label
    return {"waiting_minutes": "Average waiting time", "handling_minutes": "Average handling time",
            "cycle_minutes": "Average cycle time", "first_pass_yield": "First-pass yield",
            "within_service_level": "Called within the service level", "overall_satisfaction": "Overall satisfaction",
            "csat_mean_0_100": "Overall satisfaction (0-100)", "csat_top2": "Share satisfied (top-2 box)",
            "nps": "Net Promoter Score", "complaint_rate": "Complaint rate"}[m]


def _metric_label_zh(m: str, dims) -> str:
    for did, _, zh in dims:
        if did == m:
            return zh
    return {"waiting_minutes": "平均等候时间", "handling_minutes": "平均业务办理时间", "cycle_minutes": "平均业务周期时间",
            "first_pass_yield": "一次通过率", "within_service_level": "服务水平内叫号占比", "overall_satisfaction": "总体满意度",
            "csat_mean_0_100": "总体满意度（0–100）", "csat_top2": "满意及非常满意占比", "nps": "净推荐值",
            "complaint_rate": "投诉率"}[m]


def _metric_unit(m: str) -> str:
    return {"waiting_minutes": "min", "handling_minutes": "min", "cycle_minutes": "min", "first_pass_yield": "share",
            "within_service_level": "share", "csat_top2": "share", "complaint_rate": "share", "nps": "points"}.get(m, "score")


def _sqi_range(m: str) -> tuple[float, float]:
    return {"waiting_minutes": (3, 30), "handling_minutes": (3, 40), "cycle_minutes": (5, 60), "first_pass_yield": (0.5, 1.0),
            "within_service_level": (0.3, 1.0), "csat_top2": (0.3, 1.0), "complaint_rate": (0.0, 0.2),
            "nps": (-50, 70), "csat_mean_0_100": (40, 100)}.get(m, (40, 100))


def _target_value(m: str, kind: str, rng, item_scale, sat_scale) -> float:
    if kind == "relative_change":
        return -0.1 if m in LOWER_BETTER else 0.05
    if kind == "change":
        return {"nps": 10.0, "waiting_minutes": -2.0, "handling_minutes": -1.0, "cycle_minutes": -3.0,
                "complaint_rate": -0.01, "overall_satisfaction": 0.2}.get(m, 0.05 if m in ("csat_top2", "first_pass_yield",
                                                                                          "within_service_level") else 3.0)
    return {"nps": 20.0, "waiting_minutes": 10.0, "handling_minutes": 12.0, "cycle_minutes": 30.0, "complaint_rate": 0.05,
            "csat_top2": 0.8, "first_pass_yield": 0.85, "within_service_level": 0.8,
            "overall_satisfaction": round(sat_scale[0] + 0.75 * (sat_scale[1] - sat_scale[0]), 1)}.get(m, 75.0)


# ---------------------------------------------------------------------------------------------
# Survey data


class _Latent:
    """Dimension means, loadings and driver weights of one study (fixed across its quarters)."""

    def __init__(self, rng, dims: list[str], scale):
        self.dims = dims
        self.mean = dict(zip(dims, rng.uniform(0.55, 0.8, len(dims))))       # position on the scale, 0-1
        self.general = float(rng.uniform(0.5, 0.8))                          # loading on the general factor
        w = rng.dirichlet(np.ones(len(dims)) * 0.8)
        self.weight = dict(zip(dims, w))
        self.noise = dict(zip(dims, rng.uniform(0.35, 0.7, len(dims))))      # item noise, latent SDs


def _cut(x: np.ndarray, scale) -> np.ndarray:
    return np.clip(np.rint(x), scale[0], scale[1]).astype(np.int64)


def _on_scale(z: np.ndarray, centre: float, scale) -> np.ndarray:
    """Latent z (SD 1) to a continuous value on the scale: centre (0-1) ± about a fifth of the range per SD."""
    lo, hi = scale
    return lo + (hi - lo) * (centre + 0.2 * z)


def _survey(rng, quarter, n, lat: _Latent, items, reverse, item_scale, sat_scale, rec_scale, complaint, branch_ids,
            branch_quality, segments, channels, measures, invalid: bool) -> tuple[pd.DataFrame, int]:
    q0, q1 = _quarter_bounds(quarter)
    days = (q1 - q0).days + 1
    day = rng.integers(0, days, n)
    date = np.array([q0 + dt.timedelta(days=int(d)) for d in day])
    branch = rng.choice(branch_ids, n)
    g = rng.standard_normal(n) + np.array([branch_quality[b] for b in branch])
    # improvement after a measure's start in its pilot branches
    lift = np.zeros(n)
    for m in measures:
        lift += np.isin(branch, m["pilot"]) & (date >= m["start"])
    frame: dict[str, object] = {"respondent_id": [f"R{quarter}-{i:06d}" for i in range(1, n + 1)]}
    frame["branch_id"] = branch
    if segments:
        frame["segment"] = rng.choice(segments, n)
    if channels:
        frame["channel"] = rng.choice(channels, n)
    frame["interview_date"] = [d.isoformat() for d in date]
    dscore = {}
    spec = math.sqrt(max(1e-6, 1 - lat.general ** 2))
    for d in lat.dims:
        z = lat.general * g + spec * rng.standard_normal(n) + 0.5 * lift
        dscore[d] = z
        for it in items:
            if it["dimension"] != d:
                continue
            x = _cut(_on_scale(z + lat.noise[d] * rng.standard_normal(n), lat.mean[d], item_scale), item_scale)
            frame[it["id"]] = (item_scale[0] + item_scale[1] - x) if it["id"] in reverse else x
    drive = sum(lat.weight[d] * dscore[d] for d in lat.dims)
    drive = drive / max(1e-9, np.std(drive)) if n > 2 else drive
    sat = 0.8 * drive + 0.6 * rng.standard_normal(n)
    frame["overall_satisfaction"] = _cut(_on_scale(sat, 0.7, sat_scale), sat_scale)
    if rec_scale is not None:
        frame["recommend"] = _cut(_on_scale(0.8 * sat + 0.6 * rng.standard_normal(n), 0.72, rec_scale), rec_scale)
    if complaint:
        frame["complaint"] = (rng.random(n) < 1 / (1 + np.exp(2.5 + 1.2 * sat))).astype(np.int64)
    if rng.random() < 0.3:
        frame["comment"] = np.where(rng.random(n) < 0.1, "等候时间太长了，希望多开几个窗口", "")
    df = pd.DataFrame(frame).astype(object)
    item_ids = [it["id"] for it in items]
    # accidental straight lines (likely with few items): nudge the first item
    flat = np.flatnonzero((df[item_ids].nunique(axis=1) == 1).to_numpy())
    for r in flat:
        v = int(df.at[r, item_ids[0]])
        df.at[r, item_ids[0]] = v - 1 if v > item_scale[0] else v + 1
    bad = _corrupt_survey(rng, df, quarter, item_ids, item_scale, n) if invalid else 0
    return df, bad


def _corrupt_survey(rng, df, quarter, item_ids, scale, n) -> int:
    if n < 5:
        return 0
    k = int(min(max(1, round(n * rng.uniform(0.005, 0.05))), n // 3))
    rows = rng.choice(np.arange(n // 2, n), k, replace=False)      # keep the first half valid (duplicates copy from it)
    q0, _ = _quarter_bounds(quarter)
    for r in rows:
        kind = str(rng.choice(["out_of_range", "missing_value", "duplicate_id", "unknown_branch", "date_outside_quarter",
                               "unparsable", "straight_lining"]))
        col = str(rng.choice(item_ids))
        if kind == "out_of_range":
            df.at[r, col] = int(rng.choice([scale[0] - 1, scale[1] + 1]))
        elif kind == "missing_value":
            df.at[r, col] = ""
        elif kind == "duplicate_id":
            df.at[r, "respondent_id"] = df.at[int(rng.integers(0, n // 2)), "respondent_id"]
        elif kind == "unknown_branch":
            df.at[r, "branch_id"] = "总行营业部-X"
        elif kind == "date_outside_quarter":
            df.at[r, "interview_date"] = (q0 - dt.timedelta(days=int(rng.integers(1, 40)))).isoformat()
        elif kind == "unparsable":
            df.at[r, col] = f"{df.at[r, col]}分"
        else:
            v = int(rng.integers(scale[0], scale[1] + 1))
            for c in item_ids:
                df.at[r, c] = v
    return k


# ---------------------------------------------------------------------------------------------
# Process times and benchmark


def _tickets(rng, seed, quarter, m, branches, btypes, ticket_channels, service_level, measures, invalid: bool):
    q0, q1 = _quarter_bounds(quarter)
    workdays = [d.date() for d in pd.date_range(q0, q1) if d.weekday() < 5]
    hours = (9, (service_level or {}).get("opening_hours", {}).get("close", 17))
    bids = [b["id"] for b in branches]
    # branch busyness and business-type speed are properties of the study, the same every quarter
    srng = np.random.default_rng([seed, 77])
    busy = dict(zip(bids, srng.uniform(0.5, 2.0, len(bids))))
    speed = srng.uniform(0.6, 1.7, len(btypes))             # handling / standard: some types faster than standard
    branch = rng.choice(bids, m)
    day = [workdays[i] for i in rng.integers(0, len(workdays), m)]
    minute = rng.uniform(hours[0] * 60, hours[1] * 60 - 1, m)
    issued = pd.to_datetime([dt.datetime.combine(d, dt.time()) for d in day]) + pd.to_timedelta(minute, unit="min")
    bt = rng.integers(0, len(btypes), m)
    wait = rng.exponential(1.0, m) * np.array([6 * busy[b] for b in branch])
    pilot_after = np.zeros(m, bool)
    for ms in measures:
        pilot_after |= np.isin(branch, ms["pilot"]) & (np.array(day) >= ms["start"])
    wait = np.where(pilot_after, wait * 0.75, wait)
    std = np.array([b["standard_minutes"] for b in btypes])[bt]
    handling = std * speed[bt] * rng.lognormal(-0.08, 0.4, m)
    walk = rng.uniform(0.2, 1.5, m)
    called = issued + pd.to_timedelta(wait, unit="min")
    started = called + pd.to_timedelta(walk, unit="min")
    finished = started + pd.to_timedelta(handling, unit="min")
    fmt = "%Y-%m-%d %H:%M:%S"
    df = pd.DataFrame({
        "ticket_id": [f"T{quarter}-{i:07d}" for i in range(1, m + 1)], "branch_id": branch,
        "business_type": np.array([b["id"] for b in btypes])[bt],
        "counter_id": [f"{b}-C{c:02d}" for b, c in zip(branch, rng.integers(1, 5, m))],
        "issued_at": issued.strftime(fmt), "called_at": called.strftime(fmt), "started_at": started.strftime(fmt),
        "finished_at": finished.strftime(fmt), "first_pass": (rng.random(m) < 0.85).astype(int),
    }).astype(object)
    if ticket_channels:
        df["channel"] = rng.choice(ticket_channels, m)
    bad = 0
    if invalid and m >= 10:
        bad = int(min(max(1, round(m * rng.uniform(0.002, 0.02))), m // 4))
        for r in rng.choice(np.arange(m // 2, m), bad, replace=False):
            kind = str(rng.choice(["called_before_issued", "missing_value", "duplicate_id", "unknown_business_type"]))
            if kind == "called_before_issued":
                df.at[r, "called_at"] = (pd.Timestamp(df.at[r, "issued_at"]) - pd.Timedelta(minutes=5)).strftime(fmt)
            elif kind == "missing_value":
                df.at[r, "finished_at"] = ""
            elif kind == "duplicate_id":
                df.at[r, "ticket_id"] = df.at[int(rng.integers(0, m // 2)), "ticket_id"]
            else:
                df.at[r, "business_type"] = "unknown_type"
    return df, bad


def _benchmark(rng, benchmark, competitors, invalid: bool) -> pd.DataFrame:
    rows = []
    for bank in [benchmark["our_bank"]] + list(competitors):
        for mt in benchmark["metrics"]:
            lo, hi = next(c[5] for c in BENCH_METRICS if c[0] == mt["id"])
            if bank != benchmark["our_bank"] and rng.random() < 0.1:
                continue   # a competitor without this figure
            rows.append({"bank": bank, "metric": mt["id"], "value": round(float(rng.uniform(lo, hi)), 1)})
    if invalid and rng.random() < 0.5:
        rows.append({"bank": "Bank Z", "metric": "unknown_metric", "value": 1.0})
    return pd.DataFrame(rows)


def _write_csv(rng, df: pd.DataFrame, path: Path) -> None:
    enc = str(rng.choice(["utf-8", "utf-8", "utf-8-sig", "gb18030"]))
    text = df.to_csv(index=False)
    data = text.encode(enc)
    if path.suffix == ".gz":
        import gzip

        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# The service-request log (issue 12)

REQUEST_CHANNELS = [("phone", "Phone", "客服热线", False), ("online_chat", "Online chat", "在线客服", True),
                    ("app", "Mobile app", "手机银行App", True), ("email", "Email", "电子邮件", False),
                    ("wechat", "WeChat", "微信", True), ("branch_desk", "Branch desk", "网点柜面", False)]
GRADES = [("general", "General complaint", "一般投诉", 72), ("major", "Major complaint", "重大投诉", 168),
          ("serious", "Serious complaint", "严重投诉", 360)]


def _request_section(rng, quarters, has_process: bool, targets: list, dims) -> tuple[dict, list]:
    """A random ``service_requests`` section and 0-2 targets on request metrics."""
    n_ch = int(rng.integers(1, len(REQUEST_CHANNELS) + 1))
    chosen = [REQUEST_CHANNELS[i] for i in sorted(rng.choice(len(REQUEST_CHANNELS), n_ch, replace=False))]
    grades = GRADES[:int(rng.integers(0, 4))]
    hours = [[], [24], [24], [4, 24]][int(rng.integers(4))]
    section: dict = {"channels": [{"id": a, "label": b, "label_zh": c, "digital": d} for a, b, c, d in chosen],
                     "complaint_grades": [{"id": a, "label": b, "label_zh": c, "deadline_hours": h} for a, b, c, h in grades],
                     "response_targets": [{"hours": h, "label": f"Response within {h} h", "label_zh": f"{h}小时内响应"}
                                          for h in hours]}
    if rng.random() < 0.7:
        section["rating_scale"] = {"min": 1, "max": int(rng.choice([5, 5, 10]))}
    use_tickets = has_process and rng.random() < 0.7
    sessions = {q: int(rng.integers(10_000, 5_000_000)) for q in quarters if rng.random() < 0.8 or not use_tickets}
    if not use_tickets and not sessions:
        sessions = {quarters[-1]: 1_000_000}
    section["visits"] = {"queue_tickets": bool(use_tickets), "digital_sessions": sessions}
    if rng.random() < 0.5:
        kind = str(rng.choice(START_KINDS))
        start = _measure_start(rng, kind, quarters)
        digital = [c[0] for c in chosen if c[3]] or [chosen[0][0]]
        metrics = ["request_first_response_minutes"] + (["post_contact_rating"] if "rating_scale" in section else [])
        claims = [{"id": "fast", "label": "First response -50 %", "label_zh": "首次响应时间缩短50%",
                   "metric": "request_first_response_minutes",
                   "kind": "relative_change", "operator": "<=", "value": -0.5}]
        if "rating_scale" in section and rng.random() < 0.5:
            claims.append({"id": "rating", "label": "Rating +0.5", "label_zh": "评价提高0.5分", "metric": "post_contact_rating",
                           "kind": "change",
                           "operator": ">=", "value": 0.5})
        section["measures"] = [{"id": "ai_assistant", "name": "AI assistant", "name_zh": "智能客服", "start": start,
                                "channels": digital, "metrics": metrics, "claims": claims}]
    extra = []
    if rng.random() < 0.6:
        extra.append({"id": "t_complaints_pm", "label": "Complaints per million visits", "label_zh": "每百万人次投诉数",
                      "metric": "complaints_per_million",
                      "kind": str(rng.choice(["level", "relative_change"])), "operator": "<=",
                      "value": float(rng.choice([1.0, 5.0, -0.2]))})
        if extra[-1]["kind"] == "level" and extra[-1]["value"] < 0:
            extra[-1]["value"] = 1.0
        if extra[-1]["kind"] == "relative_change":
            extra[-1]["value"] = -0.2
    if hours and rng.random() < 0.5:
        extra.append({"id": "t_response", "label": f"Answered within {hours[-1]} h", "label_zh": f"{hours[-1]}小时内响应率",
                      "metric": f"response_within_{hours[-1]}h",
                      "kind": "level", "operator": ">=", "value": 0.9})
    if any(c[3] for c in chosen) and rng.random() < 0.4:
        extra.append({"id": "t_containment", "label": "AI containment", "label_zh": "智能客服独立解决率", "metric": "ai_containment",
                      "kind": "level",
                      "operator": ">=", "value": 0.7})
    return section, extra


def _request_count(rng) -> int:
    r = rng.random()
    if r < 0.06:
        return int(rng.integers(1, 3))
    if r < 0.3:
        return int(rng.integers(3, 200))
    if r < 0.95:
        return int(rng.integers(200, 4000))
    return int(rng.integers(4000, 12000))


def _requests(rng, quarter, n, section, branch_ids, invalid: bool) -> tuple[pd.DataFrame, int]:
    """``n`` raw requests of a quarter (the columns the validator reads), a few invalid (never all)."""
    q0, q1 = _quarter_bounds(quarter)
    span = (q1 - q0).days + 1
    received = pd.Timestamp(q0) + pd.to_timedelta(rng.integers(0, span * 86400, n), unit="s")
    channels = [c["id"] for c in section["channels"]]
    digital = {c["id"] for c in section["channels"] if c["digital"]}
    ch = rng.choice(channels, n)
    m = next(iter(section.get("measures", [])), None)
    after = (received >= pd.Timestamp(m["start"])) if m else np.zeros(n, bool)
    ai = np.isin(ch, list(digital)) & np.asarray(after)
    first = rng.exponential(120, n) * np.where(ai, 0.5, 1.0) + 1
    first[(rng.random(n) < 0.02) & ~ai] = np.nan
    res = first + rng.exponential(600, n)
    res[rng.random(n) < 0.05] = np.nan
    u = rng.random(n)
    escalated = ai & (u > 0.7)
    handled = np.where(ai & ~escalated, "ai", "human")
    grades = [g["id"] for g in section["complaint_grades"]]
    grade = np.where((rng.random(n) < 0.01) & (handled == "human"), rng.choice(grades or [""], n), "")
    fmt = "%Y-%m-%d %H:%M:%S"

    def stamp(minutes):
        t = received + pd.to_timedelta(np.nan_to_num(minutes), unit="min")
        return np.where(np.isnan(minutes), "", t.strftime(fmt))
    df = pd.DataFrame({
        "request_id": [f"R{quarter}-{i:06d}" for i in range(n)], "customer_id": [f"{x:012d}" for x in rng.integers(10**11, 10**12, n)],
        "channel": ch, "received_at": received.strftime(fmt), "first_response_at": stamp(first),
        "resolved_at": stamp(np.where(np.isnan(first), np.nan, res)), "handled_by": handled,
        "escalated": escalated.astype(int), "complaint_grade": grade,
    }).astype(object)
    if "branch_desk" in channels:
        df["branch_id"] = np.where(ch == "branch_desk", rng.choice(branch_ids, n), "")
    if rng.random() < 0.7:
        df["resolved_first_contact"] = np.where(df["resolved_at"] != "", (rng.random(n) < 0.7).astype(int).astype(str), "")
    sc = section.get("rating_scale")
    if sc is not None:
        r = np.clip(np.rint(rng.normal(0.7 * sc["max"], 1.0, n) + np.where(handled == "ai", 0.3, 0.0)), sc["min"], sc["max"])
        df["post_contact_rating"] = np.where(rng.random(n) < 0.4, r.astype(int).astype(str), "")
    bad = 0
    if invalid and n >= 10:
        bad = int(min(max(1, round(n * rng.uniform(0.002, 0.02))), n // 4))
        for r in rng.choice(np.arange(n // 2, n), bad, replace=False):
            kind = str(rng.choice(["responded_before_received", "unknown_channel", "duplicate_id", "escalated_but_ai"]))
            if kind == "responded_before_received":
                df.at[r, "first_response_at"] = (pd.Timestamp(df.at[r, "received_at"]) - pd.Timedelta(minutes=5)).strftime(fmt)
                df.at[r, "resolved_at"] = ""
            elif kind == "unknown_channel":
                df.at[r, "channel"] = "fax"
            elif kind == "duplicate_id":
                df.at[r, "request_id"] = df.at[int(rng.integers(0, n // 2)), "request_id"]
            else:
                df.at[r, "handled_by"], df.at[r, "escalated"] = "ai", 1
    return df, bad
