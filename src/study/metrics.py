"""The metric registry: every fact about a metric in one place.

A metric is anything the report measures, compares, tests or sets a target on: the survey's
outcomes (overall satisfaction on its own scale, its 0-100 score, the top-two-box share, the NPS
or — when "recommend" is not asked on 0-10 — the recommend top-two-box share, the complaint
rate), each questionnaire dimension's 0-100 score, the queue log's process metrics and, where the study
declares a service-request log, its metrics (response and resolution times, the share answered within
each response target, first-contact resolution, complaints per million visits, complaints resolved within
their deadline, AI containment and handoff, the post-contact rating). For each
the registry says its label (English and Chinese), source dataset, kind, unit, scale, which way
is better, the test family that fits it, and how it is written (digits, per cent or points).

Which metrics exist depends on the study: ``nps`` only where ``recommend`` is on 0-10 (Reichheld's
definition needs 0-10; otherwise :data:`RECOMMEND_TOP2` replaces it, and the report says so),
``complaint_rate`` only where a complaint outcome is declared, process metrics only where the
study declares business types (and ``within_service_level`` only with a service level). Every
layer reads these facts from here: the statistics choose tests by :attr:`Metric.test_kind`, the
report formats values by :attr:`Metric.style`, and nothing else keeps a list of metric ids.

This module knows nothing of formatting libraries or prose; it only states facts.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Kinds of metric: what a value is.
KINDS = ("mean", "score", "share", "nps", "duration", "index", "rate")

RECOMMEND_TOP2 = "recommend_top2"
PROCESS_METRIC_IDS = ("waiting_minutes", "handling_minutes", "cycle_minutes", "first_pass_yield", "within_service_level")
SURVEY_METRIC_IDS = ("overall_satisfaction", "csat_mean_0_100", "csat_top2", "nps", RECOMMEND_TOP2, "complaint_rate")


@dataclass(frozen=True)
class Metric:
    """Facts about one metric.

    ``kind``: mean (on the outcome's own scale), score (0-100), share (0-1), nps (-100..100),
    duration (minutes), index (a composite such as the SQI, never tested), rate (events per exposure,
    e.g. complaints per million visits: exact Poisson intervals).
    ``test_kind``: the family of tests that fits (``continuous`` / ``binary`` / ``nps``; ``None``
    for an index). ``style``: how a value is written — ``pct`` (a share as per cent, changes in
    percentage points), ``min`` (minutes, one decimal), ``num`` (a number, one decimal from 10 up).
    """

    id: str
    label: str
    label_zh: str
    source: str                 # survey | process | index
    kind: str
    unit: str                   # e.g. "min", "share", "points", "0-100", "1-7"
    unit_zh: str
    direction: str = "higher"   # higher | lower
    scale: tuple[float, float] | None = None
    style: str = "num"
    digits: int = 1

    @property
    def test_kind(self) -> str | None:
        return {"share": "binary", "nps": "nps", "index": None, "rate": "poisson"}.get(self.kind, "continuous")

    def label_in(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" and self.label_zh else self.label


def scale_text(lo: float, hi: float) -> str:
    """A scale's range as written in labels: "1-5", "0-10"."""
    return f"{lo:g}-{hi:g}"


def _scale_zh(lo: float, hi: float) -> str:
    """A scale's range in a Chinese label: "1–5分" (en dash, as the catalogue writes ranges)."""
    return f"{lo:g}–{hi:g}分"


def top2_range(lo: float, hi: float) -> tuple[float, float]:
    """The two highest answers of an integer scale (for a 0/1 scale, just the top one)."""
    return (hi - 1, hi) if hi - lo >= 2 else (hi, hi)


# Fixed facts of the metrics that do not depend on the study's scales.
_PROCESS = {
    "waiting_minutes": Metric("waiting_minutes", "Average waiting time", "平均等候时间", "process", "duration", "min", "分钟",
                              "lower", style="min"),
    "handling_minutes": Metric("handling_minutes", "Average handling time", "平均业务办理时间", "process", "duration", "min",
                               "分钟", "lower", style="min"),
    "cycle_minutes": Metric("cycle_minutes", "Average cycle time", "平均业务周期时间", "process", "duration", "min", "分钟",
                            "lower", style="min"),
    "first_pass_yield": Metric("first_pass_yield", "First-pass yield", "一次通过率", "process", "share", "share", "比例",
                               style="pct"),
    "within_service_level": Metric("within_service_level", "Share of tickets called within the service-level target",
                                   "服务水平内叫号比例", "process", "share", "share", "比例", style="pct"),
}
# The service-request log's metrics (study.stats.requests computes them); the response-target shares depend on the
# study's targets (one per target, see _request_metrics).
_REQUESTS = {
    "request_first_response_minutes": Metric("request_first_response_minutes", "Average first-response time",
                                             "平均首次响应时间", "requests", "duration", "min", "分钟", "lower", style="min"),
    "request_resolution_minutes": Metric("request_resolution_minutes", "Average resolution time", "平均问题解决时间",
                                         "requests", "duration", "min", "分钟", "lower", style="min"),
    "first_contact_resolution": Metric("first_contact_resolution", "Share resolved at the first contact", "首次接触解决率",
                                       "requests", "share", "share", "比例", style="pct"),
    "complaints_per_million": Metric("complaints_per_million", "Complaints per million visits", "每百万人次投诉数",
                                     "requests", "rate", "per million visits", "件/百万人次", "lower", digits=2),
    "complaint_within_deadline": Metric("complaint_within_deadline", "Share of complaints resolved within their grade's "
                                        "deadline", "投诉按时办结率", "requests", "share", "share", "比例", style="pct"),
    "ai_containment": Metric("ai_containment", "AI containment (resolved without a human)", "智能客服独立解决率",
                             "requests", "share", "share", "比例", style="pct"),
    "ai_handoff": Metric("ai_handoff", "AI handoff to a human", "转人工率", "requests", "share", "share", "比例",
                         "lower", style="pct"),
}


def response_metric_id(hours: float) -> str:
    """The metric id of a first-response target: 24 -> 'response_within_24h'."""
    return f"response_within_{hours:g}h"


def _request_metrics(study) -> dict[str, Metric]:
    sr = getattr(study, "service_requests", None)
    if sr is None:
        return {}
    out = dict(_REQUESTS)
    for t in sr.response_targets:
        mid = response_metric_id(t.hours)
        out[mid] = Metric(mid, f"Share of requests answered within {t.hours:g} h", f"{t.hours:g}小时内响应率",
                          "requests", "share", "share", "比例", style="pct")
    if sr.rating_scale is not None:
        sc = scale_text(sr.rating_scale.min, sr.rating_scale.max)
        zh = _scale_zh(sr.rating_scale.min, sr.rating_scale.max)
        out["post_contact_rating"] = Metric("post_contact_rating", f"Post-contact rating ({sc} mean)", f"服务后评价（{zh}均值）",
                                            "requests", "mean", sc, sc, scale=(sr.rating_scale.min, sr.rating_scale.max),
                                            digits=2)
    return out


def _point_metrics(study) -> dict[str, Metric]:
    """Seed §5's channel coverage (study.yml counts per quarter) and customer-information accuracy (first-pass
    yield of the study's information-verification business type in the queue log), where the study declares them."""
    out: dict[str, Metric] = {}
    cov = getattr(study, "channel_coverage", None)
    if cov is not None:
        unit_zh = cov.unit_zh or cov.unit
        out["channel_coverage"] = Metric("channel_coverage", f"Channel coverage (share of {cov.unit} covered)",
                                         f"渠道覆盖率（{unit_zh}覆盖比例）", "coverage", "share", "share", "比例", style="pct")
    acc = getattr(study, "information_accuracy", None)
    if acc is not None:
        bt = next((b for b in study.business_types if b.id == acc.business_type), None)
        name, name_zh = (bt.label, bt.label_zh or bt.label) if bt is not None else (acc.business_type, acc.business_type)
        out["information_accuracy"] = Metric("information_accuracy",
                                             f"Customer-information accuracy (first-pass yield of {name})",
                                             f"客户信息准确率（{name_zh}一次通过率）", "process", "share", "share", "比例",
                                             style="pct")
    return out


SQI = Metric("sqi", "Service Quality Index (0-100)", "服务质量指数（0–100）", "index", "index", "0-100", "0–100", style="num")


def _survey_metrics(study) -> dict[str, Metric]:
    o = study.questionnaire.outcomes
    out: dict[str, Metric] = {}
    s = o.overall_satisfaction
    lo, hi = s.scale.min, s.scale.max
    sc = scale_text(lo, hi)
    out["overall_satisfaction"] = Metric("overall_satisfaction", f"Overall satisfaction ({sc} mean)", f"总体满意度（{_scale_zh(lo, hi)}均值）",
                                         "survey", "mean", sc, sc, scale=(lo, hi), digits=2)
    out["csat_mean_0_100"] = Metric("csat_mean_0_100", "Overall satisfaction (0-100)", "总体满意度（0–100）", "survey", "score",
                                    "0-100", "0–100", scale=(0, 100))
    t_lo, t_hi = top2_range(lo, hi)
    if (lo, hi) == (1, 5):
        top_label, top_zh = "Share satisfied or very satisfied (top-2 box)", "满意及非常满意占比"
    else:
        top_label = f"Share answering {t_lo:g}-{t_hi:g} on the {sc} satisfaction scale (top-2 box)"
        top_zh = f"总体满意度前两项占比（{_scale_zh(lo, hi)}量表中选择{t_lo:g}–{t_hi:g}）"
    out["csat_top2"] = Metric("csat_top2", top_label, top_zh, "survey", "share", "share", "比例", style="pct")
    r = o.recommend
    if r is not None:
        rlo, rhi = r.scale.min, r.scale.max
        if (rlo, rhi) == (0, 10):
            out["nps"] = Metric("nps", "Net Promoter Score", "净推荐值", "survey", "nps", "points", "分", scale=(-100, 100))
        else:
            a, b = top2_range(rlo, rhi)
            out[RECOMMEND_TOP2] = Metric(
                RECOMMEND_TOP2, f"Share likely to recommend ({a:g}-{b:g} on {scale_text(rlo, rhi)}; top-2 box)",
                f"推荐意愿前两项占比（{_scale_zh(rlo, rhi)}量表中选择{a:g}–{b:g}）", "survey", "share", "share", "比例", style="pct")
    if o.complaint is not None:
        out["complaint_rate"] = Metric("complaint_rate", "Complaint rate", "投诉率", "survey",
                                       "share", "share", "比例", "lower", style="pct")
    for d in study.questionnaire.dimensions:
        out[d.id] = Metric(d.id, d.label, getattr(d, "label_zh", "") or "", "survey", "score", "0-100", "0–100", scale=(0, 100))
    return out


def _has_process(study) -> bool:
    return bool(getattr(study, "business_types", None))


def registry(study) -> dict[str, Metric]:
    """Every metric this study can measure, by id (survey metrics, dimension scores, process metrics)."""
    out = _survey_metrics(study)
    if _has_process(study):
        for k, m in _PROCESS.items():
            if k == "within_service_level" and getattr(study, "service_level", None) is None:
                continue
            out[k] = m
    out.update(_request_metrics(study))
    out.update(_point_metrics(study))
    return out


def get(study, metric_id: str) -> Metric:
    """The facts of one metric of the study; a KeyError names the metrics the study has."""
    if metric_id == "sqi":
        return SQI
    reg = registry(study)
    if metric_id not in reg:
        raise KeyError(f"metric '{metric_id}' is not available in this study; available: {sorted(reg)}")
    return reg[metric_id]


def lookup(metric_id: str, study=None) -> Metric:
    """Facts for formatting when no study is at hand: known ids, else a 0-100 dimension score."""
    if study is not None:
        try:
            return get(study, metric_id)
        except KeyError:
            pass
    if metric_id == "sqi":
        return SQI
    if metric_id in _PROCESS:
        return _PROCESS[metric_id]
    if metric_id in _REQUESTS:
        return _REQUESTS[metric_id]
    if metric_id in ("csat_top2", "complaint_rate", RECOMMEND_TOP2):
        return Metric(metric_id, metric_id, "", "survey", "share", "share", "比例",
                      "lower" if metric_id == "complaint_rate" else "higher", style="pct")
    if metric_id == "nps":
        return Metric("nps", "Net Promoter Score", "净推荐值", "survey", "nps", "points", "分", scale=(-100, 100))
    if metric_id == "overall_satisfaction":
        return Metric(metric_id, "Overall satisfaction", "总体满意度", "survey", "mean", "", "", digits=2)
    return Metric(metric_id, metric_id, "", "survey", "score", "0-100", "0–100", scale=(0, 100))


def available(study, metric_ids, sources: set[str] | None = None) -> list[str]:
    """The ids among ``metric_ids`` that this study defines and whose source was supplied."""
    reg = registry(study)
    out = []
    for m in metric_ids:
        if m == "sqi":
            out.append(m)
            continue
        if m not in reg:
            continue
        src = {"process": "process_times", "requests": "service_requests"}.get(reg[m].source, reg[m].source)
        if sources is not None and src not in sources:
            continue
        out.append(m)
    return out
