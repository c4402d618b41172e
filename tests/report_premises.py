"""Premise checks of a rendered report against the study it was rendered from.

Each check is a function ``(gen, doc) -> list[str]`` (one message per violation) registered in
:data:`CHECKS` under a name; :func:`check_report` runs them all. A check states a rule of issue 10
("every sentence true") that can be decided from the visible text of the HTML report and the
generated study's shape (:class:`tests.studygen.GeneratedStudy`) or its processed data. Add a check
by writing a function and decorating it with ``@check("name")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from tests.conftest import unmarked

try:  # BeautifulSoup is in the project's environment (nbconvert needs it); fall back to html.parser
    from bs4 import BeautifulSoup
except ImportError:  # pragma: no cover
    BeautifulSoup = None

NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split())}
RAW_IDS = ("overall_satisfaction", "csat_top2", "csat_mean_0_100", "complaint_rate", "waiting_minutes", "handling_minutes",
           "cycle_minutes", "first_pass_yield", "within_service_level")
# Headings that belong to one data source: a report without the source must not have them.
SOURCE_HEADINGS = {
    "process_times": re.compile(r"process times|queue|staffing|waiting time", re.I),
    "benchmark": re.compile(r"competitor|benchmark", re.I),
    "service_requests": re.compile(r"contact centre|AI assistant|measures on channels", re.I),
}
# How Appendix B may name a source that was not supplied.
SOURCE_NAMES = {"process_times": re.compile(r"process[- ]times?|queue|ticket", re.I),
                "benchmark": re.compile(r"benchmark|competitor", re.I),
                "service_requests": re.compile(r"service-request|request log", re.I)}


@dataclass
class ReportDoc:
    """The visible text of a report, whole and per chapter, and its headings."""

    path: Path
    text: str                                   # visible text, whitespace collapsed
    headings: list[tuple[str, str]]             # (tag, text) of h1/h2/h3 in document order
    chapters: dict[str, str] = field(default_factory=dict)   # h1 text -> visible text up to the next h1

    def chapter(self, prefix: str) -> str:
        return next((t for h, t in self.chapters.items() if h.startswith(prefix)), "")


def _collapse(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def read_report(path: Path | str) -> ReportDoc:
    html = unmarked(Path(path).read_text(encoding="utf-8"))
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "title", "head"]):
        tag.decompose()
    headings = [(h.name, _collapse(h.get_text(" "))) for h in soup.find_all(["h1", "h2", "h3"])]
    main = soup.find("main") or soup.body or soup
    # chapter text by walking strings between h1s (robust to nesting)
    chapters = _chapter_texts(main)
    return ReportDoc(Path(path), _collapse(soup.get_text(" ")), headings, chapters)


def _chapter_texts(root) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current = None
    for s in root.find_all(string=True):
        h1 = s.find_parent("h1")
        if h1 is not None:
            title = _collapse(h1.get_text(" "))
            if title != current:
                current = title
                out.setdefault(current, [])
            continue
        if current is not None:
            out[current].append(str(s))
    return {k: _collapse(" ".join(v)) for k, v in out.items()}


CHECKS: dict[str, Callable] = {}


def check(name: str):
    def deco(fn):
        CHECKS[name] = fn
        return fn
    return deco


def check_report(gen, doc: ReportDoc, skip: set[str] | frozenset = frozenset()) -> dict[str, list[str]]:
    """Run every check not in ``skip``; return {check name: violations} for the checks that failed."""
    out = {}
    for name, fn in CHECKS.items():
        if name in skip:
            continue
        found = fn(gen, doc)
        if found:
            out[name] = found
    return out


def _around(text: str, m: re.Match, width: int = 70) -> str:
    return "…" + text[max(0, m.start() - width):m.end() + width] + "…"


def _study_scales(gen) -> set[tuple[int, int]]:
    s = {tuple(gen.item_scale), tuple(gen.satisfaction_scale)}
    if gen.recommend_scale is not None:
        s.add(tuple(gen.recommend_scale))
    rating = (gen.definition.get("service_requests") or {}).get("rating_scale")
    if rating:   # the post-contact rating of the request log is a scale of the study too
        s.add((int(rating["min"]), int(rating["max"])))
    return s


# ---------------------------------------------------------------------------------------------


@check("score_formula_uses_item_scale")
def _score_formula(gen, doc):
    """'(mean … − a) / (b − a)': the dimension score formula names the items' scale, any other a study scale."""
    lo, hi = gen.item_scale
    out = []
    for m in re.finditer(r"\(mean[^()]*?[−-]\s*(\d+)\s*\)\s*/\s*\(\s*(\d+)\s*[−-]\s*(\d+)\s*\)", doc.text):
        a, b, c = (int(x) for x in m.groups())
        about_items = re.search(r"dimension|item", m.group(0) + doc.text[max(0, m.start() - 40):m.start()])
        allowed = {(lo, hi)} if about_items else _study_scales(gen)
        if a != c or (c, b) not in allowed:
            out.append(f"formula on {c}..{b} but the study's {'items are' if about_items else 'scales are'} "
                       f"{sorted(allowed)}: {_around(doc.text, m)}")
    return out


@check("scale_labels_match_study")
def _scale_labels(gen, doc):
    """No '1-5' / '1-7' / '0-10' label unless one of the study's scales is that range."""
    scales = _study_scales(gen)
    out = []
    for m in re.finditer(r"(?<![\d.\-–])(1|0)\s?[-–]\s?(5|7|10)(?![\d.])", doc.text):
        pair = (int(m.group(1)), int(m.group(2)))
        if pair in {(1, 5), (1, 7), (0, 10)} and pair not in scales:
            out.append(f"'{m.group(0)}' but the study's scales are {sorted(scales)}: {_around(doc.text, m)}")
    return out


@check("nps_only_with_0_10_recommend")
def _nps(gen, doc):
    if gen.nps_defined:
        return []
    # saying why there is no NPS ("an NPS needs a 0–10 recommend question") is allowed
    return [f"NPS without a 0-10 recommend item (recommend: {gen.recommend_scale}): {_around(doc.text, m)}"
            for m in re.finditer(r"\bNPS\b|Net Promoter", doc.text)
            if not re.match(r"\s*(needs|requires|is not|cannot)", doc.text[m.end():m.end() + 20])][:3]


@check("every_business_type_longer")
def _every_business_type(gen, doc):
    m = re.search(r"Every business type takes longer than its standard", doc.text)
    if not m:
        return []
    dev = business_type_deviations(gen)
    if dev.empty or (dev > 0).all():
        return []
    return [f"'Every business type takes longer' but deviations are {dev.round(1).to_dict()}"]


@check("no_markdown_asterisks")
def _asterisks(gen, doc):
    return [f"literal ** in the text: {_around(doc.text, m)}" for m in re.finditer(r"\*\*", doc.text)][:3]


@check("no_raw_column_ids")
def _raw_ids(gen, doc):
    pat = re.compile(r"\b(" + "|".join(RAW_IDS) + r")\b|\([a-z_]+, [a-z_]+\)")
    return [f"raw id '{m.group(0)}': {_around(doc.text, m)}" for m in pat.finditer(doc.text)][:5]


@check("dimension_count_stated_right")
def _dimension_count(gen, doc):
    n = len(gen.dimensions)
    out = []
    for m in re.finditer(r"\b(?:[Tt]he|[Aa]ll|in) (\w+) dimension(?:s| scores)\b", doc.text):
        word = m.group(1).lower()
        k = int(word) if word.isdigit() else NUMBER_WORDS.get(word)
        if k is not None and k != n:
            out.append(f"states {k} dimensions, the study has {n}: {_around(doc.text, m)}")
    return out


@check("no_zero_measures")
def _zero_measures(gen, doc):
    return [f"{_around(doc.text, m)}" for m in re.finditer(r"\b0 improvement measures\b", doc.text)]


@check("no_empty_baseline")
def _empty_baseline(gen, doc):
    return [f"{_around(doc.text, m)}" for m in re.finditer(r"compared with \.|against \.|baseline \)", doc.text)]


@check("no_nan_in_text")
def _nan(gen, doc):
    return [f"{_around(doc.text, m)}" for m in re.finditer(r"(?<![\w-])(nan|NaN|inf|-inf)(?![\w-])", doc.text)][:3]


@check("no_chapter_for_missing_source")
def _missing_source_sections(gen, doc):
    supplied = gen.sources[gen.current]
    out = []
    for source, pat in SOURCE_HEADINGS.items():
        if source in supplied:
            continue
        for tag, text in doc.headings:
            # measure names are the study's own words (the generator names one "… smart queue management"): h2 under
            # chapter 4 name measures, not data sources
            if tag in ("h1", "h2") and pat.search(text) and not text.startswith(("Contents", "Tables", "Figures")) \
                    and not re.match(r"4\.\d+ ", text):
                out.append(f"heading '{text}' although {source} was not supplied for {gen.current}")
    return out


@check("appendix_b_names_missing_sources")
def _appendix_b(gen, doc):
    supplied = gen.sources[gen.current]
    missing = [s for s in SOURCE_NAMES if s not in supplied]
    if not missing:
        return []
    b = doc.chapter("Appendix B")
    if not b:
        return ["no Appendix B"]
    sentences = re.split(r"(?<=[.;])\s+", b)
    absent = re.compile(r"\bnot\b|\bno\b|without|absent|missing", re.I)
    return [f"Appendix B has no sentence saying that {s} was not supplied" for s in missing
            if not any(SOURCE_NAMES[s].search(x) and absent.search(x) for x in sentences)]


# ---------------------------------------------------------------------------------------------
# The service-request log (issue 12)


def _requests(gen) -> pd.DataFrame | None:
    path = gen.data_dir / "processed" / gen.current / "service_requests.parquet"
    return pd.read_parquet(path) if path.exists() else None


def _int(text: str) -> int:
    return int(text.replace(",", ""))


@check("request_counts_match_data")
def _request_counts(gen, doc):
    """'Requests received in Q: N', 'k complaints were recorded', 'the AI assistant started N conversations' and the
    share answered within a target state the current quarter's processed request log."""
    df = _requests(gen)
    out = []
    if df is None:
        for pat in (r"Requests received in", r"complaints? (?:was|were) recorded", r"AI assistant started"):
            if re.search(pat, doc.text):
                out.append(f"'{pat}' although {gen.current} has no request log")
        return out
    for m in re.finditer(r"Requests received in (\d{4}Q[1-4]): ([\d,]+) over ([\d,]+) channels", doc.text):
        if m.group(1) != gen.current or _int(m.group(2)) != len(df) or _int(m.group(3)) != df["channel"].nunique():
            out.append(f"{_around(doc.text, m)}: the log has {len(df)} requests on {df['channel'].nunique()} channels")
    complaints = int(df["complaint_grade"].notna().sum())
    for m in re.finditer(r"([\d,]+) complaints? (?:was|were) recorded in", doc.text):
        if _int(m.group(1)) != complaints:
            out.append(f"{_around(doc.text, m)}: the log has {complaints} complaints")
        if (_int(m.group(1)) == 1) != bool(re.match(r"[\d,]+ complaint was", m.group(0))):
            out.append(f"number and verb disagree: {_around(doc.text, m)}")
    ai = int(((df["handled_by"] == "ai") | df["escalated"]).sum())
    for m in re.finditer(r"The AI assistant started ([\d,]+) conversations", doc.text):
        if _int(m.group(1)) != ai:
            out.append(f"{_around(doc.text, m)}: the log has {ai} AI-started requests")
    if ai == 0 and re.search(r"The AI assistant started", doc.text):
        out.append("an AI sentence although no request was handled by the AI")
    for m in re.finditer(r"([\d.]+) % of the requests were first answered within ([\d.]+) h", doc.text):
        share = (df["first_response_minutes"] <= float(m.group(2)) * 60).mean() * 100
        if abs(float(m.group(1)) - share) > 0.051:
            out.append(f"{_around(doc.text, m)}: the log has {share:.2f} %")
    return out


@check("request_interval_verdicts")
def _request_verdicts(gen, doc):
    """'the whole interval lies below/above it' only with an interval that does; 'so few events' only under 20."""
    out = []
    for m in re.finditer(r"\(\d+ % CI \[([\d.,]+), ([\d.,]+)\]\)\. (?:With so few events[^:]*|Against the target)[^:]*?of "
                         r"([\d.,]+) per million visits: the (whole interval lies (below|above) it|interval contains it)",
                         doc.text):
        lo, hi, target = (float(x.replace(",", "")) for x in m.groups()[:3])
        word = m.group(5)
        ok = (hi <= target + 0.005) if word == "below" else (lo > target - 0.005) if word == "above" else (lo <= target + 0.005 <= hi + 0.01)
        if not ok:
            out.append(f"verdict does not follow from the interval: {_around(doc.text, m)}")
    for m in re.finditer(r"([\d,]+) complaints? (?:was|were) recorded[^.]*\.[^.]*\. With so few events", doc.text):
        if _int(m.group(1)) >= 20:
            out.append(f"'so few events' with {m.group(1)} complaints: {_around(doc.text, m)}")
    return out


# ---------------------------------------------------------------------------------------------
# Facts from the processed data


def business_type_deviations(gen) -> pd.Series:
    """(mean handling − standard) / standard × 100 per business type in the current quarter's kept tickets."""
    path = gen.data_dir / "processed" / gen.current / "process_times.parquet"
    if not path.exists():
        return pd.Series(dtype=float)
    t = pd.read_parquet(path, columns=["business_type", "handling_minutes"])
    std = {b["id"]: b["standard_minutes"] for b in gen.definition.get("business_types", [])}
    mean = t.groupby("business_type")["handling_minutes"].mean()
    return (mean - mean.index.map(std)) / mean.index.map(std) * 100


@check("drivers_alike_only_if_concordant")
def _drivers_alike(gen, doc):
    """'ranks the drivers alike' needs a Kendall τ that says so (τ ≥ .5)."""
    out = []
    for m in re.finditer(r"ranks the drivers alike \(Kendall's τ = ([−-]?\d*\.\d+)", doc.text):
        tau = float(m.group(1).replace("−", "-"))
        if tau < 0.5:
            out.append(f"'alike' at τ = {tau}: {_around(doc.text, m)}")
    return out


@check("drivers_same_order_only_if_identical")
def _drivers_same_order(gen, doc):
    """'ranks the drivers in the same order' needs Kendall's τ = 1 (identical ranks)."""
    return [f"'same order' at τ = {m.group(1)}: {_around(doc.text, m)}"
            for m in re.finditer(r"ranks the drivers in the same order \(Kendall's τ = ([−-]?\d*\.\d+)", doc.text)
            if float(m.group(1).replace("−", "-")) < 0.995]


@check("no_control_limits_without_a_chart")
def _no_limits(gen, doc):
    """'No control charts: ... no control limits can be set' and a control-chart figure cannot both appear."""
    if "No control charts: fewer than two months" in doc.text and "Control charts of the monthly survey figures" in doc.text:
        return ["the report says there are no control charts and shows one"]
    return []


@check("plural_after_one")
def _plural_after_one(gen, doc):
    """'1 banks', '1 queue tickets', '1 improvement measures': a count of one takes the singular."""
    pat = re.compile(r"(?<![\d.,])\b1 (banks|branches|tickets|queue tickets|respondents|questionnaires|improvement measures|"
                     r"measures|dimensions|competitors|items|quarters|targets|problems|areas)\b")
    return [_around(doc.text, m) for m in pat.finditer(doc.text)][:3]


# ---------------------------------------------------------------------------------------------
# Sampling design and tracking across quarters (issue 13)


@check("tracking_sections_match_quarters")
def _tracking_sections(gen, doc):
    """A trend needs three quarters, a change two: no "Trend across quarters" with fewer than three quarters,
    no "Tracking across quarters" with one."""
    n = len(gen.quarters)
    out = []
    for _tag, text in doc.headings:
        if re.search(r"Trend across quarters", text) and n < 3:
            out.append(f"heading '{text}' with {n} quarter(s)")
        if re.search(r"Tracking across quarters", text) and n < 2:
            out.append(f"heading '{text}' with {n} quarter(s)")
    return out


_TREND = re.compile(r"(rose|fell) over the (\d+) quarters from (\d{4}Q[1-4]) to (\d{4}Q[1-4]): ([+−-]?[\d.]+)(?: pp)? per quarter "
                    r"\(\d+ % CI \[([+−-]?[\d.]+)(?: pp)?, ([+−-]?[\d.]+)(?: pp)?\]\)")


def _num(s: str) -> float:
    return float(s.replace("−", "-").replace("+", ""))


@check("trend_direction_matches_its_interval")
def _trend_direction(gen, doc):
    """'rose' only with the slope's interval above zero, 'fell' only below; the quarters counted are the study's."""
    out = []
    for m in _TREND.finditer(doc.text):
        word, n, first, last, slope, lo, hi = m.groups()
        slope, lo, hi = _num(slope), _num(lo), _num(hi)
        if (word == "rose" and not (lo > 0 and slope > 0)) or (word == "fell" and not (hi < 0 and slope < 0)):
            out.append(f"'{word}' with slope {slope} and interval [{lo}, {hi}]: {_around(doc.text, m)}")
        if int(n) != len(gen.quarters) or first != gen.quarters[0] or last != gen.quarters[-1]:
            out.append(f"{n} quarters {first}-{last} but the study has {gen.quarters}: {_around(doc.text, m)}")
    return out


@check("weighting_rule_matches_the_study")
def _weighting_rule(gen, doc):
    """The methods appendix says the estimates are weighted exactly when the study declares a sampling design."""
    a = doc.chapter("Appendix A")
    if not a:
        return []
    says_none = "declares no sampling design" in a
    says_strata = "The sample is stratified by" in a
    if gen.sampling and (says_none or not says_strata):
        return ["the study declares sampling but Appendix A does not say the figures are weighted"]
    if not gen.sampling and (says_strata or not says_none):
        return ["the study declares no sampling but Appendix A does not say the figures are unweighted"]
    return []


_WEIGHTED_FIT = re.compile(r"explain R² = [\d.]+ of the weighted variance of overall satisfaction \(adjusted [−\-\d.]+; "
                           r"design-based Wald F\((\d+), (\d+)\)")


@check("design_based_driver_and_effects_only_with_a_design")
def _design_based_models(gen, doc):
    """The driver regression and the survey DiDs are called design-based exactly when the study declares a sampling
    design; the design-based Wald F of the drivers has one numerator df per dimension."""
    out = []
    weighted_fit = list(_WEIGHTED_FIT.finditer(doc.text))
    unweighted_fit = re.search(r"explain R² = [\d.]+ of the variance of overall satisfaction", doc.text)
    design_words = ("Pilot against control branches after the start, on the sampling design",
                    "Survey figures (standard errors: design-based)", "Driver regression on the sampling design and unweighted",
                    "Survey figures are compared on the sampling design", "design-based t test of after against before")
    if not gen.sampling:
        out += [f"design-based driver fit without a sampling design: {_around(doc.text, m)}" for m in weighted_fit]
        out += [f"'{w}' without a sampling design" for w in design_words if w in doc.text]
        return out
    if unweighted_fit:
        out.append(f"unweighted driver fit in a study with a sampling design: {_around(doc.text, unweighted_fit)}")
    for m in weighted_fit:
        if int(m.group(1)) != len(gen.dimensions):
            out.append(f"Wald F with {m.group(1)} numerator df for {len(gen.dimensions)} dimensions: {_around(doc.text, m)}")
    return out


@check("control_chart_weighting_matches_the_study")
def _chart_weighting(gen, doc):
    """The methods appendix calls the charted survey values weighted exactly when the study declares a sampling design."""
    weighted = "Survey values are weighted with each quarter's design weights" in doc.text
    unweighted = "charted values unweighted" in doc.text
    if weighted and not gen.sampling:
        return ["weighted control-chart values without a sampling design"]
    if unweighted and gen.sampling:
        return ["unweighted control-chart values in a study with a sampling design"]
    return []


# ---------------------------------------------------------------------------------------------
# Seed §5: channel coverage and customer-information accuracy (issue 12)


@check("point_service_sentences")
def _point_service(gen, doc):
    """The coverage sentence states the study definition's counts for the quarter (census: no interval; sample: a
    Wilson interval); the accuracy sentence states the processed log's verification tickets; a target is called met
    only when its premise holds; a study without these sections has no such heading or sentence."""
    d = gen.definition
    out = []
    cov, acc = d.get("channel_coverage"), d.get("information_accuracy")
    if cov is None and acc is None:
        if re.search(r"Channel coverage and customer-information accuracy|covered by a service channel", doc.text):
            out.append("a channel-coverage section although the study declares neither coverage nor accuracy")
        return out
    c = (cov or {}).get("quarters", {}).get(gen.current)
    for m in re.finditer(r"In (\d{4}Q[1-4]), ([\d,]+) of ([\d,]+) (sampled )?.*? were covered by a service channel \(([\d.]+) %",
                         doc.text):
        if c is None or (_int(m.group(2)), _int(m.group(3))) != (c["covered"], c["total"]) or m.group(1) != gen.current:
            out.append(f"{_around(doc.text, m)}: the study gives {c} for {gen.current}")
        elif abs(float(m.group(5)) - 100 * c["covered"] / c["total"]) > 0.051:
            out.append(f"{_around(doc.text, m)}: the share is {100 * c['covered'] / c['total']:.2f} %")
        if bool(m.group(4)) == bool(cov["census"]):
            out.append(f"{_around(doc.text, m)}: census is {cov['census']}")
    target = next((t for t in d.get("targets", []) if t["metric"] == "channel_coverage"), None)
    if target is not None and c is not None and cov["census"]:
        met = c["covered"] / c["total"] >= target["value"]
        said = re.search(r"The target “" + re.escape(target["label"]) + r"” is (not )?met", doc.text)
        if said is None or bool(said.group(1)) == met:
            out.append(f"census coverage {c} against {target['value']}: expected {'met' if met else 'not met'}")
    if acc is not None:
        path = gen.data_dir / "processed" / gen.current / "process_times.parquet"
        for m in re.finditer(r"Customer-information accuracy: ([\d,]+) of ([\d,]+) tickets of “([^”]+)” passed at the first "
                             r"attempt, ([\d.]+) %", doc.text):
            df = pd.read_parquet(path, columns=["business_type", "first_pass"]) if path.exists() else None
            sel = df[(df["business_type"].astype(str) == acc["business_type"]) & df["first_pass"].notna()] if df is not None else None
            if sel is None or (_int(m.group(1)), _int(m.group(2))) != (int(sel["first_pass"].sum()), len(sel)):
                out.append(f"{_around(doc.text, m)}: the log has {None if sel is None else (int(sel['first_pass'].sum()), len(sel))}")
    return out
