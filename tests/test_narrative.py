"""The documented rules that generate the report's findings and recommendations (the text modules, study.report.text)."""

from __future__ import annotations

import pandas as pd
import pytest

from study.report import analysis
from study.report.text import conclusions, current_state, effects, measures, problems, rules, summary, words


def fake_context(study, **cache):
    return analysis.Context(study=study, current=None, baseline=None, cache=dict(cache))


@pytest.mark.parametrize("better, change, p, expected", [
    ("higher", 2.0, 0.01, "improved"), ("higher", -2.0, 0.01, "worsened"),
    ("lower", -2.0, 0.01, "improved"), ("lower", 2.0, 0.01, "worsened"),
    ("lower", -2.0, 0.20, "no significant change"), ("higher", 2.0, float("nan"), "not tested"),
])
def test_change_rule(better, change, p, expected):
    assert analysis.change_verdict({"better": better, "change": change, "p": p}, alpha=0.05) == expected


def _ipa(rows):
    df = pd.DataFrame(rows, columns=["dimension", "importance", "performance", "quadrant"])
    df["importance_line"] = df["importance"].mean()
    df["performance_line"] = df["performance"].mean()
    return df


def test_priority_rule_takes_concentrate_here_first_then_important_low_scores(study):
    ipa = _ipa([("efficiency", 0.30, 60, "concentrate here"), ("attitude", 0.20, 65, "concentrate here"),
                ("professionalism", 0.25, 90, "keep up the good work"), ("channel", 0.05, 50, "low priority"),
                ("retention", 0.20, 85, "keep up the good work")])
    ctx = fake_context(study, drivers={"ipa": ipa})
    first = analysis.priorities(ctx)
    assert first["dimension"].tolist() == ["efficiency", "attitude", "retention"]
    text = summary.priority_sentence(ctx, first)
    assert "2 fall in the 'concentrate here' quadrant" in text


def test_priority_rule_fallback_is_stated(study):
    ipa = _ipa([("efficiency", 0.30, 80, "keep up the good work"), ("attitude", 0.25, 85, "keep up the good work"),
                ("channel", 0.05, 50, "low priority"), ("retention", 0.22, 90, "keep up the good work")])
    ctx = fake_context(study, drivers={"ipa": ipa})
    first = analysis.priorities(ctx)
    assert first["dimension"].tolist() == ["efficiency", "attitude", "retention"]
    assert "no dimension falls in the 'concentrate here' quadrant" in summary.priority_sentence(ctx, first)


def test_hour_ranges():
    assert words._hour_ranges([9, 10, 11, 14], [1, 2, 1, 1]) == "09:00–12:00 (+1 to +2), 14:00–15:00 (+1)"
    assert words._hour_ranges([16]) == "16:00–17:00"
    assert words._hour_ranges([]) == ""


@pytest.mark.parametrize("verdict, control_changed, starts_with", [
    ("improved", False, "Roll out"), ("improved", True, "Review"), ("no evidence of change", False, "Review"),
    ("worsened", False, "Stop"),
])
def test_measure_recommendation_rule(study, verdict, control_changed, starts_with):
    m = study.measures[0]
    verdicts = pd.DataFrame([{"measure": m.id, "metric": m.metrics[0], "label": "Average waiting time", "better": "lower",
                              "estimate": -2.0, "ci_low": -3.0, "ci_high": -1.0, "p_holm": 0.01, "verdict": verdict,
                              "control_changed": control_changed}])
    first = pd.DataFrame({"dimension": ["efficiency"], "label": ["Business handling efficiency"], "importance": [0.2],
                          "performance": [70.0]})
    staffing = pd.DataFrame(columns=["branch_id", "hour", "difference", "counters_needed", "counters_used"])
    targets = pd.DataFrame(columns=["label", "status", "observed", "ci_low", "ci_high", "operator", "target_value"])
    found = pd.DataFrame(columns=["area", "problem", "evidence", "rule"])
    recs = conclusions.recommendations(fake_context(study), verdicts, first, staffing, targets, found)
    assert recs.loc[0, "rule"] == "REC-MEASURE"
    assert recs.loc[0, "recommendation"].startswith(starts_with)
    from study.report import present  # the cell stays Markdown (pandas 3's str dtype would drop the Md type: "**" leaks)
    assert isinstance(recs.loc[0, "recommendation"], present.Md)
    assert "REC-FOCUS" in set(recs["rule"])


def test_every_rule_used_is_documented():
    import importlib
    import inspect
    import re
    from pathlib import Path

    import study.report.text as text

    modules = [importlib.import_module(f"study.report.text.{p.stem}") for p in Path(text.__file__).parent.glob("*.py")]
    used = {c for m in modules for c in re.findall(r'"((?:REC|PROBLEM)-[A-Z]+)"', inspect.getsource(m))}
    assert used <= set(rules.RULES["rule"])


# --- improvement measures on their own calendars (rules EFFECT and REC-MEASURE) --------------------
def _measure(mid, start, control=("B05", "B06", "B07", "B08"), metrics=("waiting_minutes",), name=None):
    from study.data.config import Measure

    return Measure(id=mid, name=name or f"Measure {mid}", start=start, pilot=["B01", "B02", "B03", "B04"],
                   control=list(control), metrics=list(metrics))


def _verdict(m, verdict, status="introduced", design=None, reason=""):
    return {"measure": m.id, "metric": m.metrics[0], "label": "Average waiting time", "better": "lower", "status": status,
            "design": design or ("difference-in-differences" if m.control else "pilot before/after"), "test": "welch",
            "estimate": -2.0, "ci_low": -3.0, "ci_high": -1.0, "p_used": 0.01, "p_holm": 0.01, "verdict": verdict,
            "control_changed": False, "reason": reason}


@pytest.mark.parametrize("kwargs, verdict, status, starts_with", [
    ({"control": ()}, "improved", "introduced", "Confirm"),
    ({"control": ()}, "no evidence of change", "introduced", "Review"),
    ({"control": ()}, "worsened", "introduced", "Review the design"),
    ({}, "improved", "sustained", "Continue"),
    ({}, "no evidence of change", "sustained", "Continue"),
    ({}, "not tested", "planned", "Evaluate"),
    ({}, "not tested", "not testable", "Plan an evaluation"),
])
def test_measure_recommendations_per_status_and_design(study, kwargs, verdict, status, starts_with):
    from study.report import present

    m = _measure("m", "2025-04-01", name="Queue **express**", **kwargs)
    s = study.model_copy(update={"measures": [m]})
    v = pd.DataFrame([_verdict(m, verdict, status, "not tested" if status in ("planned", "not testable") else None,
                               reason="starts after 2025Q2" if status == "planned" else "no baseline")])
    recs = conclusions.measure_recommendations(fake_context(s), v)
    assert len(recs) == 1 and recs[0]["rule"] == "REC-MEASURE"
    text = recs[0]["recommendation"]
    assert isinstance(text, present.Md) and text.startswith(starts_with)
    # the name is inserted literally: its asterisks are escaped, the toolkit's bold is markup
    html = present.markdown_to_html(text)
    assert "<strong>Queue **express**</strong>" in html


def test_recommendations_keep_one_measure_call_site(study):
    import inspect

    src = inspect.getsource(conclusions.recommendations)
    assert src.count("measure_recommendations(ctx, verdicts)") == 1 and "REC-MEASURE" not in src


@pytest.fixture(scope="module")
def sample_ctx(prepared_sample, study):
    from study.data import io

    data_dir, _ = prepared_sample
    return lambda measures, baseline="2025Q1": analysis.Context(
        study=study.model_copy(update={"measures": measures}), current=io.load_quarter(data_dir, "2025Q2"),
        baseline=io.load_quarter(data_dir, baseline) if baseline else None, n_boot=99)


def test_no_measures_say_so_in_one_sentence(sample_ctx):
    ctx = sample_ctx([])
    intro = measures.measures_intro(ctx)
    assert "lists no improvement measures" in intro and "Each" not in intro and intro.count(".") == 1
    assert analysis.measure_plan(ctx).empty and analysis.effects(ctx).empty and analysis.measure_verdicts(ctx).empty
    assert effects.effect_sentence(ctx, analysis.measure_verdicts(ctx), analysis.process_its(ctx)[1]) == ""
    assert "no improvement measures" in effects.effects_intro(ctx)


def test_effect_sentences_per_design_and_window(sample_ctx):
    from study.report import tables

    pilot_only = _measure("loan", "2025-04-01", control=(), metrics=("handling_minutes", "efficiency"), name="Loan desk")
    sustained = _measure("greet", "2025-02-17", metrics=("within_service_level",), name="Greeter")
    planned = _measure("kiosk", "2025-08-01", name="Kiosk")
    ctx = sample_ctx([pilot_only, sustained, planned])
    plan = analysis.measure_plan(ctx).set_index("measure")
    assert plan.loc["loan", "design"] == "pilot before/after" and plan.loc["greet", "status"] == "sustained"
    assert plan.loc["kiosk", "design"] == "not tested" and plan.loc["kiosk", "reason"] == "starts after 2025Q2"
    v = analysis.measure_verdicts(ctx)
    assert set(v.loc[v["measure"] == "loan", "design"]) == {"pilot before/after"}
    assert v.loc[v["measure"] == "kiosk", "verdict"].tolist() == ["not tested"]
    weekly, its = analysis.process_its(ctx)
    # the pilot-only measure's ITS is on its own metric, handling time
    fitted = its[(its["measure"] == "loan") & its["status"].eq("fitted")]
    assert fitted["metric"].tolist() == ["handling_minutes"]
    assert set(analysis.its_plot_data(ctx, "loan")["metric"]) == {"handling_minutes"}
    text = effects.effect_sentence(ctx, v, its)
    assert "weaker than a difference-in-differences" in text and "sustained-effect comparison" in text
    assert "starts on 01 August 2025, after 2025Q2" in text and "weekly average handling time" in text
    assert "its_notes" not in text and "**" not in present_text(text)
    assert not tables.its(ctx, its).empty and "Measure" in tables.its(ctx, its).columns


def present_text(md: str) -> str:
    """The visible text of generated Markdown (tags dropped): no markup may leak as literal asterisks."""
    import re

    from study.report import present

    return re.sub(r"<[^>]+>", "", present.markdown_to_html(md))


# ---------------------------------------------------------------------------------------------
# Premise-checked sentences (issue 10): a rule whose premise does not hold says the other thing


def _bt(deviations):
    return pd.DataFrame({"business_type": [f"bt{i}" for i in range(len(deviations))], "deviation_pct": deviations,
                         "handling_minutes_mean": [10.0] * len(deviations), "standard_minutes": [10.0] * len(deviations)})


def _branches():
    return pd.DataFrame({"branch_id": ["B01"], "n": [100], "waiting_minutes_mean": [8.0], "within_service_level": [0.9]})


@pytest.mark.parametrize("deviations, expected", [
    ([30.0, 10.0, 5.0], "Every business type takes longer than its standard"),
    ([30.0, -10.0, -5.0], "1 of 3 business types take longer than their standard"),
    ([-30.0, -10.0], "Every business type is handled within its standard"),
    ([12.0], "The business type takes longer than its standard"),
])
def test_process_sentence_states_only_what_the_deviations_show(study, deviations, expected):
    text = current_state.process_sentences(fake_context(study), {"by_business_type": _bt(deviations), "by_branch_id": _branches()})
    assert text.startswith(expected)
    if any(d <= 0 for d in deviations):
        assert "Every business type takes longer" not in text


class _Fit:
    def __init__(self, k, tau, p):
        self.fit = pd.Series({"k": k, "r2": 0.4, "adj_r2": 0.39, "f_df1": k, "f_df2": 100, "f": 10.0, "f_p": 0.001, "n": 120})
        self.terms = pd.DataFrame({"term": ["(Intercept)"] + [f"d{i}" for i in range(k)], "vif": [float("nan")] + [1.5] * k})


class _Ologit:
    def __init__(self, tau, p):
        self.agreement = pd.Series({"kendall_tau": tau, "kendall_p": p})


@pytest.mark.parametrize("k, tau, p, says", [
    (5, 0.95, 0.001, "ranks the drivers alike"),
    (5, 0.40, 0.48, "does not reproduce the ranking"),   # the τ = .40, p = .48
    (5, 0.60, 0.01, "partial agreement"),
])
def test_driver_sentence_counts_dimensions_and_checks_the_ordered_logit(study, k, tau, p, says):
    lmg = pd.DataFrame({"rank": range(1, k + 1), "label": [f"D{i}" for i in range(k)], "share": [1 / k] * k})
    drv = {"model": _Fit(k, tau, p), "lmg": lmg, "ologit": _Ologit(tau, p)}
    text = current_state.driver_sentences(fake_context(study), drv)
    assert text.startswith(f"The {words.NUMBER_WORDS[k]} dimension scores explain")
    assert says in text
    if says != "ranks the drivers alike":
        assert "alike" not in text


def test_driver_sentence_for_a_skipped_analysis(study):
    text = current_state.driver_sentences(fake_context(study), analysis.skipped("3 complete questionnaires for 5 dimensions"))
    assert "was not carried out: 3 complete questionnaires" in text


def test_counts_agree_with_their_nouns():
    assert words.count(1, "queue ticket") == "1 queue ticket"
    assert words.count(2, "branch", "branches") == "2 branches"
    assert words.count(12345, "bank") == "12,345 banks"


def test_score_formula_uses_the_study_scale(study):
    from study.data.config import ScaleRange

    s = study.model_copy(update={"questionnaire": study.questionnaire.model_copy(update={"scale": ScaleRange(min=0, max=10)})})
    import html

    note = html.unescape(current_state.score_notes(fake_context(s))[0])
    assert "− 0) / (10 − 0)" in note and "0-10 item scale" in note and "(5 − 1)" not in note


def test_labels_from_the_study_are_literal_in_prose(study):
    s = study.model_copy(update={"organisation": "**Bold** <b>x</b> $y$"})
    text = str(words.skipped_sentence(s.organisation, "reason"))
    from study.report import present

    html = present.markdown_to_html(present.Md(text))
    assert "<strong>" not in html and "<b>" not in html and "**Bold**" in html.replace("&#42;", "*")


def test_figure_labels_follow_the_report_language(study):
    # Analyses are stored in English (one pass for both languages); the frames handed to figures are relabelled
    # at display time, or a Chinese figure shows English dimension names (seen on the zh PDF's Figures 2.1 and 2.4).
    from types import SimpleNamespace

    from study import i18n

    ctx = SimpleNamespace(study=study)
    ids = list(study.dimension_ids)
    dims = pd.DataFrame({"dimension": ids, "label": [study.label(d) for d in ids]})
    drv = {"lmg": pd.DataFrame({"predictor": ids, "share": range(len(ids)), "label": dims["label"]})}
    english = set(dims["label"])
    with i18n.use("zh"):
        for points in (current_state.dimension_points(ctx, dims), current_state.importance_points(ctx, drv)):
            assert not set(points["label"]) & english
            assert all(any("\u4e00" <= ch <= "\u9fff" for ch in label) for label in points["label"])
    assert list(current_state.importance_points(ctx, drv)["predictor"]) == ids[::-1]   # largest share first


def test_improper_cfa_is_named_and_its_validity_not_claimed(study):
    """An improper solution (Heywood case) is said to be one; CR/AVE/fit are not judged and "every dimension meets the
    thresholds" is not said (premise: the solution is admissible)."""
    from pathlib import Path

    from study import i18n
    from study.stats import reliability

    hw = pd.read_csv(Path(__file__).parent / "data" / "heywood.csv")
    cfa = reliability.cfa(hw, {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3"]})
    ok = pd.DataFrame({"what": ["A", "B"], "statistic": ["alpha", "alpha"], "value": [0.85, 0.75], "ok": [True, True],
                       "reason": ["", ""]})
    meas = {"cfa": cfa, "judgements": pd.concat([ok, cfa.judgements], ignore_index=True)}
    ctx = fake_context(study)
    text = str(current_state.validity_sentences(ctx, meas))
    assert "improper solution (a Heywood case: negative residual variance of a1)" in text
    assert "convergent-validity" not in text and "Below threshold" not in text
    assert "Every dimension meets the reliability threshold (α ≥ .70)" in text   # true: both alphas pass
    with i18n.use("zh"):
        zh = str(current_state.validity_sentences(ctx, meas))
    assert "不恰当解" in zh and "a1的残差方差为负" in zh
    found = problems.problems(ctx, pd.DataFrame(columns=["dimension"]), meas, None, None,
                               pd.DataFrame({"dimension": [], "score": []}))
    scale = found[found["rule"] == "PROBLEM-SCALE"]
    assert list(scale["evidence"]) == ["negative residual variance of a1"]
    from study.report import tables

    judged = tables.fit(cfa.fit, meas["judgements"])["Judgement"]
    assert set(judged) - {"—"} == {"not interpreted (improper solution)"}   # CFI .993 is not called good here
    # the admissible Holzinger-Swineford-like case: the usual sentence
    cfa.improper = []
    text = str(current_state.validity_sentences(ctx, {"cfa": cfa, "judgements": ok}))
    assert "improper" not in text


def test_htmt_problem_names_both_scales_by_label(study):
    """An HTMT judgement is about two scales ("a~b"): the problem and its recommendation name both by their labels,
    never the raw key (a bring-your-own study read "courtesy~speed")."""
    from pathlib import Path

    from study.stats import reliability

    hw = pd.read_csv(Path(__file__).parent / "data" / "heywood.csv")
    cfa = reliability.cfa(hw, {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3"]})
    cfa.improper = []   # read as admissible, so its HTMT is judged
    a, b = study.dimension_ids[:2]
    j = pd.DataFrame({"what": [f"{a}~{b}"], "statistic": ["htmt"], "value": [0.93], "ok": [False], "reason": [""]})
    ctx = fake_context(study)
    found = problems.problems(ctx, pd.DataFrame(columns=["dimension"]), {"cfa": cfa, "judgements": j}, None, None,
                               pd.DataFrame({"dimension": [], "score": []}))
    problem = found.loc[found["rule"] == "PROBLEM-SCALE", "problem"].iloc[0]
    assert problem == f"discriminant validity of “{study.label(a)}” and “{study.label(b)}”" and "~" not in problem
    verdicts = pd.DataFrame(columns=["measure", "metric", "label", "better", "estimate", "ci_low", "ci_high", "p_holm",
                                     "verdict", "control_changed"])
    recs = conclusions.recommendations(ctx, verdicts, pd.DataFrame(columns=["dimension", "label", "importance", "performance"]),
                                     None, pd.DataFrame(columns=["label", "status"]), found)
    text = " ".join(str(x) for x in recs["recommendation"])
    assert f"scales “{study.label(a)}” and “{study.label(b)}”" in text and "~" not in text
