"""The documented rules that generate the report's findings and recommendations (study.narrative)."""

from __future__ import annotations

import pandas as pd
import pytest

from study import analysis, narrative


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
    text = narrative.priority_sentence(ctx, first)
    assert "2 fall in the 'concentrate here' quadrant" in text


def test_priority_rule_fallback_is_stated(study):
    ipa = _ipa([("efficiency", 0.30, 80, "keep up the good work"), ("attitude", 0.25, 85, "keep up the good work"),
                ("channel", 0.05, 50, "low priority"), ("retention", 0.22, 90, "keep up the good work")])
    ctx = fake_context(study, drivers={"ipa": ipa})
    first = analysis.priorities(ctx)
    assert first["dimension"].tolist() == ["efficiency", "attitude", "retention"]
    assert "no dimension falls in the 'concentrate here' quadrant" in narrative.priority_sentence(ctx, first)


def test_hour_ranges():
    assert narrative._hour_ranges([9, 10, 11, 14], [1, 2, 1, 1]) == "09:00–12:00 (+1 to +2), 14:00–15:00 (+1)"
    assert narrative._hour_ranges([16]) == "16:00–17:00"
    assert narrative._hour_ranges([]) == ""


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
    recs = narrative.recommendations(fake_context(study), verdicts, first, staffing, targets, found)
    assert recs.loc[0, "rule"] == "REC-MEASURE"
    assert recs.loc[0, "recommendation"].startswith(starts_with)
    assert "REC-FOCUS" in set(recs["rule"])


def test_every_rule_used_is_documented():
    import inspect
    import re

    used = set(re.findall(r'"((?:REC|PROBLEM)-[A-Z]+)"', inspect.getsource(narrative)))
    assert used <= set(narrative.RULES["rule"])
