"""The report's request-log text on the sample: every number in a sentence is the statistic it states, and the
words follow the rules' premises (study.report.requests)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from study.data.config import DEFAULT_STUDY_FILE
from study.report import analysis
from study.report import requests as RR
from study.stats import requests as R


@pytest.fixture(scope="module")
def ctxs(prepared_sample):
    data_dir, truth = prepared_sample
    base, cur = truth["quarters"][-2], truth["quarters"][-1]
    return (analysis.context(DEFAULT_STUDY_FILE, data_dir, cur, base),
            analysis.context(DEFAULT_STUDY_FILE, data_dir, base, None), truth)


def _t(md) -> str:
    """The visible text of a generated sentence (values are escaped as character references in the Markdown)."""
    import html

    return html.unescape(str(md))


def _num(text: str) -> float:
    return float(text.replace(",", "").replace("\u2212", "-"))


def test_volume_and_response_sentences_state_the_statistics(ctxs):
    ctx, _, _ = ctxs
    ch = analysis.requests(ctx)["chapter"]
    text = _t(RR.volume_sentences(ctx, ch))
    m = re.search(r"Requests received in (\S+): ([\d,]+) over (\d+) channels; the most used was (.+?) with ([\d.]+) %", text)
    assert m and m.group(1) == ctx.quarter and _num(m.group(2)) == ch["volume"]["n"].sum()
    top = ch["volume"].sort_values("n", ascending=False).iloc[0]
    assert m.group(4) == ctx.study.label(top["channel"]) and _num(m.group(5)) == pytest.approx(top["share"] * 100, abs=0.05)
    heat = ch["heatmap"]
    peak = heat.loc[heat["per_day"].idxmax()]
    assert f"{RR.weekday_long()[int(peak['weekday'])]} at {int(peak['hour']):02d}:00" in text
    text = _t(RR.response_sentences(ctx, ch))
    total = ch["times_by_channel"].iloc[-1]
    m = re.search(r"([\d.]+) % of the requests were first answered within 24 h", text)
    assert _num(m.group(1)) == pytest.approx(total["share_within_24h"] * 100, abs=0.05)
    low = ch["times_by_channel"].iloc[:-1].sort_values("share_within_24h").iloc[0]
    assert f"The lowest share was on {ctx.study.label(low['channel'])}" in text


def test_complaint_sentences_follow_the_interval(ctxs):
    ctx, _, _ = ctxs
    res = analysis.requests(ctx)
    ch = res["chapter"]
    text = _t(RR.complaint_sentences(ctx, ch, res["targets"]))
    pm = ch["per_million"]
    m = re.search(r"([\d,]+) complaints? (was|were) recorded in \S+ against ([\d,]+) visits: ([\d.]+) per million visits "
                  r"\(95 % CI \[([\d.]+), ([\d.]+)\]\)", text)
    assert m and _num(m.group(1)) == pm["complaints"] and _num(m.group(3)) == pm["visits"]
    assert (m.group(2) == "was") == (pm["complaints"] == 1)
    assert (_num(m.group(4)), _num(m.group(5)), _num(m.group(6))) == pytest.approx(
        (pm["per_million"], pm["ci_low"], pm["ci_high"]), abs=0.005)
    status = res["targets"].set_index("metric").loc["complaints_per_million", "status"]
    expected = {"met": "lies below it, so it is met", "not met": "lies above it, so it is not met",
                R.UNDECIDED: "the interval contains it"}[status]
    assert expected in text
    assert ("With so few events" in text) == (pm["complaints"] < 20)
    late = ch["complaints"].query("grade != '(all)' and complaints > within_deadline")
    assert ("Every complaint was resolved within" in text) == late.empty
    # the problems rule names exactly the grades past their deadline
    probs = RR.problems(ctx)
    named = {_t(x) for x in probs.loc[probs["rule"] == "PROBLEM-REQ-DEADLINE", "problem"]}
    assert named == {f"Complaints past the deadline: {ctx.study.label(g)}" for g in late["grade"]}
    assert (probs["rule"] == "PROBLEM-REQ-COMPLAINTS").any() == (status == "not met")


def test_ai_sentences_and_the_baseline_without_ai(ctxs):
    ctx, base_ctx, truth = ctxs
    ch = analysis.requests(ctx)["chapter"]
    text = _t(RR.ai_sentences(ctx, ch))
    a = ch["ai"].iloc[0]
    m = re.search(r"started ([\d,]+) conversations: it resolved ([\d.]+) % without a human \(95 % CI \[([\d.]+) %, ([\d.]+) %\]\)",
                  text)
    assert _num(m.group(1)) == a["ai_started"] and _num(m.group(2)) == pytest.approx(a["containment"] * 100, abs=0.05)
    r = ch["rating_ai_vs_human"]
    assert ("rated higher than" in text) == (r["p"] < ctx.study.alpha and r["estimate"] > 0)
    assert "rated lower than" not in text or r["estimate"] < 0
    base_text = _t(RR.ai_sentences(base_ctx, analysis.requests(base_ctx)["chapter"]))
    assert base_text == f"No request in {base_ctx.quarter} was handled by the AI assistant."


def test_measure_sentence_and_conclusions(ctxs):
    ctx, _, _ = ctxs
    res = analysis.requests(ctx)
    m = ctx.study.service_requests.measures[0]
    text = _t(RR.measure_sentence(ctx, m, res["measure_effects"], res["its"]))
    eff = res["measure_effects"].set_index("metric")
    fr = eff.loc["request_first_response_minutes"]
    word = "fell" if fr["change"] < 0 else "rose"
    assert f"{ctx.study.label('request_first_response_minutes')} {word} from" in text
    assert fr["p"] < ctx.study.alpha and fr["change"] < 0     # the launch halved the response time
    concl = _t(RR.conclusions(ctx))
    claims = res["claims"].set_index("target")
    for _, r in claims.iterrows():
        assert (f"“{r['label']}” is not borne out" in concl) == (r["status"] == "not met")
        assert (f"“{r['label']}” is met" in concl) == (r["status"] == "met")
    tg = res["targets"]
    m2 = re.search(r"met: (\d+); not met: (\d+); not distinguishable from the threshold: (\d+)", concl)
    assert tuple(int(x) for x in m2.groups()) == ((tg["status"] == "met").sum(), (tg["status"] == "not met").sum(),
                                                  (tg["status"] == R.UNDECIDED).sum())


def test_channel_table_suppresses_small_channels(ctxs):
    ctx, _, _ = ctxs
    ch = analysis.requests(ctx)["chapter"]
    small = {k: (v.copy() if isinstance(v, pd.DataFrame) else v) for k, v in ch.items()}
    t = small["times_by_channel"]
    t.loc[0, "n"] = ctx.study.min_cell_size - 1
    table = RR.channel_table(ctx, small)
    assert table.iloc[0][RR._("First response, median (min)")] == "—"
    assert table.iloc[1][RR._("First response, median (min)")] != "—"
    assert table.iloc[-1][RR._("Channel")] == "All channels"


def test_phase_table_states_the_quarters_levels(ctxs):
    ctx, _, _ = ctxs
    res = analysis.requests(ctx)
    m = ctx.study.service_requests.measures[0]
    table = RR.phase_table(ctx, m)
    assert list(table[RR._("Quarter")]) == [p.quarter for p in m.phases]
    cur = res["chapter"]["levels"].set_index("metric")
    row = table[table[RR._("Quarter")] == ctx.quarter].iloc[0]
    assert row[RR._("AI conversations")] == f"{int(cur.loc['ai_containment', 'n']):,}"
    assert row[RR._("Resolved by the AI")] == f"{cur.loc['ai_containment', 'value'] * 100:.1f} %"
    outside = table[~table[RR._("Quarter")].isin([ctx.quarter, ctx.baseline_quarter])]
    assert (outside[RR._("In this report")] == "no").all() and (outside[RR._("AI conversations")] == "—").all()


def test_problem_evidence_is_shown_as_text_not_character_references(ctxs):
    """Table 3.6 printed "91&#46;0 % answered within 24 h (95 % CI &#91;…" in both languages: pandas' string dtype
    turned the Markdown evidence into plain text, which the table escaped a second time."""
    from study.report import present as P

    ctx, _, _ = ctxs
    found = RR.problems(ctx)
    assert len(found) and all(isinstance(x, P.Md) for x in found["evidence"])
    html = P.table_html(found[["problem", "evidence"]], "t")
    assert "&amp;#" not in html and "91.0 %" in html.replace("\u00a0", " ")
