"""Adversarial tests of session 3 (request log, sampling design, tracking, the Chinese report): each failed before
the fix beside it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from study.data.config import load_study
from study.errors import StudyDefinitionError
from study.report import paths as report_paths
from study.report import render as report
from study.stats import design
from tests.conftest import DEFAULT_STUDY_FILE, QUARTER, unmarked
from tests.test_requests import small_requests
from tests.test_validate import pid, prepare, raw_path

BASE = yaml.safe_load(Path(DEFAULT_STUDY_FILE).read_text(encoding="utf-8"))


def _study_file(tmp_path: Path, change) -> Path:
    d = copy.deepcopy(BASE)
    change(d)
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --- privacy: no raw identifier in processed data ----------------------------------------------

def test_ticket_ids_are_pseudonymised_in_processed_data(small_quarter, study_file, study):
    """ticket_id was written raw to processed/<Q>/process_times.parquet (the rejected rows had its pseudonym): a
    queue system's ticket number links to the customer's record as a customer number does."""
    data_dir, frames = small_quarter
    small_requests(study).to_csv(raw_path(data_dir, "service_requests.csv"), index=False)
    code, _, err = prepare(data_dir, study_file)
    assert code == 0, err
    out = data_dir / "processed" / QUARTER
    kept = pd.read_parquet(out / "process_times.parquet")
    assert "ticket_id" not in kept.columns
    assert kept["ticket_pid"].tolist() == [pid(t, "ticket") for t in frames["process_times"]["ticket_id"]][:len(kept)]
    raw_ids = {str(v) for name in ("survey", "process_times") for c in ("respondent_id", "ticket_id", "customer_id")
               if c in frames[name] for v in frames[name][c].dropna() if str(v)}
    raw_ids |= set(small_requests(study)["request_id"]) | set(small_requests(study)["customer_id"])
    for f in sorted(out.glob("*.parquet")) + sorted(out.glob("rejected_*.csv")):
        blob = f.read_bytes()
        leaked = sorted(i for i in raw_ids if i.encode() in blob)
        assert not leaked, f"{f.name} holds raw identifiers {leaked[:3]}"


# --- sampling: definitions that cannot weight a survey -----------------------------------------

@pytest.mark.parametrize("change, message", [
    # the weight column is written to processed data: customer_id as a "weight" passed the ids through raw
    (lambda d: d.update(sampling={"weight": "customer_id"}), "sampling.weight: 'customer_id' is an identifier"),
    (lambda d: d.update(sampling={"weight": "phone"}), "sampling.weight: 'phone' is an identifier"),
    (lambda d: d.update(sampling={"weight": "respondent_pid"}), "sampling.weight: 'respondent_pid' is an identifier"),
    # YAML .nan / .inf compare false with everything, so "v <= 0" let them through
    (lambda d: d["sampling"]["population"].update(B01=float("nan")), "population sizes must be positive numbers"),
    (lambda d: d["sampling"]["population"].update(B01=float("inf")), "population sizes must be positive numbers"),
    (lambda d: d["sampling"].update(rake=[{"column": "segment", "shares": {"mass": float("nan"), "affluent": 0.5,
                                                                           "private_banking": 0.5}}]), "every share must be positive"),
    # an item or outcome named like an identifier or a pseudonym column: respondent_pid was overwritten by answers
    (lambda d: d["questionnaire"]["items"][0].update(id="respondent_pid"), "item id 'respondent_pid' clashes"),
    (lambda d: d["questionnaire"]["items"][0].update(id="customer_id"), "item id 'customer_id' clashes"),
    (lambda d: d["questionnaire"]["outcomes"]["complaint"].update(column="phone"),
     "questionnaire.outcomes.complaint.column: column 'phone' is an identifier"),
])
def test_sampling_definitions_refused(tmp_path, change, message):
    with pytest.raises(StudyDefinitionError, match=message):
        load_study(_study_file(tmp_path, change))


def _survey_with_weight(data_dir: Path, frames: dict, weights: list) -> None:
    s = frames["survey"].copy()
    s["w"] = (weights * len(s))[:len(s)]
    s.to_csv(raw_path(data_dir, "survey.csv"), index=False)


def test_infinite_survey_weight_is_rejected(small_quarter, tmp_path):
    """A weight of inf passed ("inf > 0") and turned every design-based estimate into NaN."""
    data_dir, frames = small_quarter
    sf = _study_file(tmp_path, lambda d: d.update(sampling={"weight": "w"}))
    _survey_with_weight(data_dir, frames, ["inf", "1.5", "2", "-1", "0", "", "1e3"])
    code, _, err = prepare(data_dir, sf)
    assert code == 0, err
    rejected = pd.read_csv(data_dir / "processed" / QUARTER / "rejected_survey.csv", dtype=str)
    kept = pd.read_parquet(data_dir / "processed" / QUARTER / "survey.parquet")
    assert np.isfinite(kept["w"]).all() and (kept["w"] > 0).all()
    assert set(rejected.loc[rejected["reason"] == "invalid_weight:w", "w"].fillna("")) == {"inf", "-1", "0", ""}
    assert len(kept) == sum(1 for i in range(len(frames["survey"])) if i % 7 in (1, 2, 6))
    with pytest.raises(ValueError, match="positive weight"):
        design.build(pd.DataFrame({"w": [1.0, np.inf], "y": [1, 2]}), weight="w")


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d["sampling"]["population"].pop("B03"),
     "is a stratum (branch_id) without a population size in study.yml sampling.population"),
    (lambda d: d["sampling"]["population"].update(B01=2),
     "B01 has"),
    (lambda d: (d["sampling"].pop("population"),
                d["sampling"].update(population_by_quarter={"2025Q4": dict(BASE["sampling"]["population"])})),
     f"without a population size in study.yml sampling (no population, no population_by_quarter.{QUARTER}), "
     f"so {QUARTER}'s survey cannot be weighted"),
])
def test_strata_without_a_usable_population_size_stop_validation(small_quarter, tmp_path, change, fragment):
    """A stratum with respondents but no population size (or one smaller than its sample) passed validate and
    prepare and failed every chapter of the report with a ValueError in a notebook cell."""
    data_dir, frames = small_quarter
    sf = _study_file(tmp_path, change)
    code, out, err = prepare(data_dir, sf)
    assert code == 2 and "Traceback" not in err, err
    assert fragment in err and "nothing was written" in err
    assert not (data_dir / "processed" / QUARTER).exists()


# --- executed notebooks and render.json hold no absolute path of the machine -------------------

def test_render_leaves_no_absolute_path(tmp_path, monkeypatch):
    """papermill writes the input/output paths and the parameters (study file, data folder, results store) into
    the executed notebooks' metadata and injected cell; render.json listed them too."""
    work = tmp_path / "home" / "alice" / "bank"
    nbs = work / "nbs"
    nbs.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('quarter = "2025Q1"\nbaseline = ""\nchapter = 1\nstudy_file = ""\n'
                                       'data_dir = ""\nstore = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from study.report import present\npresent.chapter(chapter, 'A')\n"
                                                  "print(data_dir)")]
    nb.metadata["kernelspec"] = {"name": report.kernel_name(), "language": "python", "display_name": "k"}
    nbformat.write(nb, nbs / "1.0-a.ipynb")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "alice"))
    res = report.render_report("2025Q1", "", study_file=DEFAULT_STUDY_FILE, data_dir=work / "data",
                               notebooks_dir=nbs, out_dir=work / "reports", pdf=False, jobs=1, timeout=120)
    for f in [*res.notebooks, res.folder / "render.json", res.html]:
        text = unmarked(f.read_text(encoding="utf-8"))
        for absolute in (str(tmp_path), str(Path(DEFAULT_STUDY_FILE).parent), "/work/", "/home/"):
            assert absolute not in text, f"{f.name} holds {absolute}"
    executed = nbformat.read(res.notebooks[0], as_version=4)
    assert executed.metadata["papermill"]["parameters"]["data_dir"] == "data"
    assert executed.metadata["papermill"]["output_path"] == os.path.join("reports", "2025Q1", "nbs", "1.0-a.ipynb") \
        or executed.metadata["papermill"]["output_path"].endswith("1.0-a.ipynb")
    assert json.loads((res.folder / "render.json").read_text())["parameters"]["study_file"] == "study.yml"


def test_relative_paths_stop_at_a_name_boundary():
    shown = {"/root": "~", "/srv/wt": ".", "/srv/wt/data": "data"}
    assert report_paths.relative(["/root/x", "/rootfs/y", "/srv/wt-2/z", "/srv/wt/data", "see /srv/wt/src/a.py:3"],
                                 shown) == ["~/x", "/rootfs/y", "/srv/wt-2/z", "data", "see src/a.py:3"]


# --- tracking: a month of one respondent -------------------------------------------------------

def test_small_months_with_complementary_suppression():
    from study.stats import trend

    mt = pd.DataFrame({"quarter": ["Q1"] * 3 + ["Q2"] * 3 + ["Q3"] * 2, "month": list("abcdefgh"),
                       "metric": "csat_top2", "n": [60, 1, 119, 5, 3, 40, 30, 30]})
    proc = pd.DataFrame({"quarter": ["Q3"], "month": ["h"], "metric": ["waiting_minutes"], "n": [2]})
    # b alone would be its quarter's total minus a and c; d and e together are still 8 < 10
    assert trend.small_months(pd.concat([mt, proc]), 10) == {"a", "b", "d", "e", "f"}


def test_month_of_one_respondent_is_suppressed_in_tracking(tmp_path, study, study_file):
    """A month with one respondent was shown in 'Monthly statistics' (their satisfaction, top-2 and complaint answers)
    and charted and judged on the control charts; min_cell_size applies to months as to branches."""
    from study.data import validate
    from study.report import analysis
    from study.report import design_analysis as dsa
    from study.report import tracking as tracking_report
    from tests.conftest import small_survey

    data_dir = tmp_path / "data"
    for q, shift, seed in (("2024Q4", -3, 5), ("2025Q1", 0, 6)):
        s = small_survey(study, n=150, seed=seed)
        s["respondent_id"] = [f"R{q}-{i:05d}" for i in range(len(s))]
        d = pd.to_datetime(s["interview_date"]) + pd.DateOffset(months=shift)
        if q == "2025Q1":   # February keeps one respondent
            feb = d.dt.month == 2
            d[feb & (feb.cumsum() > 1)] = pd.Timestamp("2025-03-10")
        s["interview_date"] = d.dt.strftime("%Y-%m-%d")
        raw = data_dir / "raw" / q
        raw.mkdir(parents=True)
        s.to_csv(raw / "survey.csv", index=False)
        validate.prepare_quarter(study, study_file, data_dir, q)
    ctx = analysis.context(study_file, data_dir, "2025Q1", "2024Q4", n_boot=20)
    h = dsa.history(ctx)
    assert "2025-02" in h["suppressed_months"] and len(h["suppressed_months"]) >= 2
    survey_charts = h["charts"][~h["charts"]["metric"].isin(["waiting_minutes", "handling_minutes"])]
    assert not survey_charts["month"].isin(h["suppressed_months"]).any()
    table = tracking_report.monthly_table(ctx)
    feb = table[table["Month"] == "2025\u201102"].iloc[0]
    assert feb["Respondents"] == "1"
    shown = [c for c in table.columns if c not in ("Month", "Respondents")]
    assert (feb[shown] == "suppressed").all()
    hidden = table.set_index("Month")[shown].eq("suppressed").all(axis=1)
    # one more month of 2025Q1 hidden beside February (complementary), none of 2024Q4
    assert hidden.sum() == 2 and not hidden[[m for m in hidden.index if m.startswith("2024")]].any()


# --- generated sentences: true for three dimensions --------------------------------------------

def test_identical_driver_ranking_is_not_called_unreproduced(study):
    """With three dimensions Kendall's τ = 1 has p = 1/3, so 'does not reproduce the ranking' was printed for an
    ordered logit that ranked the drivers exactly as LMG did (seen in a three-dimension study)."""
    from study.report.text import current_state
    from tests.test_narrative import _Fit, _Ologit, fake_context

    lmg = pd.DataFrame({"rank": [1, 2, 3], "label": ["A", "B", "C"], "share": [0.5, 0.3, 0.2]})
    text = current_state.driver_sentences(fake_context(study), {"model": _Fit(3, 1.0, 1 / 3), "lmg": lmg,
                                                            "ologit": _Ologit(1.0, 1 / 3)})
    assert "ranks the drivers in the same order (Kendall's τ = 1&#46;00, p &#61; &#46;333)" in text
    assert "does not reproduce" not in text


# --- a study outside the repository gets its report outside it ---------------------------------

def test_report_command_takes_an_output_folder(tmp_path):
    """`python -m study report` always wrote to the repository's reports/ (report.main reads args.out_dir, the parser
    never set it): a study kept elsewhere replaced the sample's report of the same quarter."""
    from study import cli

    args = cli.build_parser().parse_args(["report", "--quarter", "2025Q2", "--out-dir", str(tmp_path / "out")])
    assert args.out_dir == tmp_path / "out"
    assert cli.build_parser().parse_args(["report", "--quarter", "2025Q2"]).out_dir is None


def test_trend_figure_keeps_the_gap_of_a_missing_quarter(study):
    """2024Q3, 2024Q4 and 2025Q2 were drawn equally spaced, as if consecutive, while the slope beside the figure counts
    calendar quarters (2025Q1 missing)."""
    from study.report import tracking as tracking_report
    from tests.test_narrative import fake_context

    qs = ["2024Q3", "2024Q4", "2025Q2"]
    pq = pd.DataFrame([{"metric": m, "quarter": q, "estimate": 0.5 + i / 10, "ci_low": 0.4 + i / 10, "ci_high": 0.6 + i / 10}
                       for m in ("csat_mean_0_100", "csat_top2") for i, q in enumerate(qs)])
    fig = tracking_report.trend_figure(fake_context(study, history={"quarters": qs, "per_quarter": pq}))
    x = np.asarray(fig.axes[0].lines[0].get_xdata(), dtype=float)
    assert np.diff(x).tolist() == [1.0, 2.0]
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == qs


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_stacked_panel_labels_fit_and_name_the_unit_once(study, lang):
    """The tracking figures' y labels ran into the next panel's ("Share satisfied or very satisfied (top-…Overall
    satisfaction") and repeated the unit ("Overall satisfaction (0-100) (0-100)"), in the sample's report."""
    from study import i18n
    from study.report import figures as F
    from study.report import tracking as tracking_report
    from tests.test_narrative import fake_context

    months = [f"2025-{i:02d}" for i in range(1, 7)]
    charts = pd.DataFrame([{"metric": m, "month": mo, "value": 0.5, "ucl": 0.7, "lcl": 0.3, "centre": 0.5,
                            "in_baseline": True, "out_of_control": False}
                           for m in ("csat_mean_0_100", "csat_top2", "nps") for mo in months])
    with i18n.use(lang), F.themed():
        fig = tracking_report.control_chart_figure(fake_context(study, history={"charts": charts}))
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        boxes = [ax.yaxis.label.get_window_extent(renderer) for ax in fig.axes]
        labels = [ax.get_ylabel() for ax in fig.axes]
    assert "(0-100) (0-100)" not in labels[0] and "（0–100） (0–100)" not in labels[0]
    # the unit in brackets of the language: "(%)", "（%）" in Chinese; a long label wraps, it is never cut
    assert all(lbl.endswith("（%）" if lang == "zh" else "(%)") and "…" not in lbl for lbl in labels[1:2])
    for upper, lower in zip(boxes, boxes[1:]):
        assert lower.y1 < upper.y0, (labels, [(b.y0, b.y1) for b in boxes])


# --- an .xlsx that decompresses far beyond its size --------------------------------------------

def _xlsx_with_long_cell(path: Path, frame: pd.DataFrame, text_bytes: int) -> None:
    """``frame`` as .xlsx whose first text cell holds ``text_bytes`` bytes of 'A' (streamed into the zip)."""
    import zipfile

    small = path.with_suffix(".small.xlsx")
    frame.to_excel(small, index=False)
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(item, data)
                continue
            i = data.index(b"<t>") + 3
            with dst.open(item.filename, "w", force_zip64=True) as fh:
                fh.write(data[:i])
                for _ in range(text_bytes >> 20):
                    fh.write(b"A" * (1 << 20))
                fh.write(b"A" * (text_bytes % (1 << 20)) + data[i:])
    small.unlink()


def test_xlsx_bomb_is_refused_before_it_is_expanded(tmp_path, study):
    """A 1.5 MB service_requests.xlsx holding one 1.5 GB cell took 53 s and 5.9 GB of memory and ended in a
    traceback (MemoryError): the zip's parts were never bounded. Now: exit-2 style errors before openpyxl reads it."""
    from study.data import io
    from study.errors import DataFileError

    frame = small_requests(study, n=5).drop(columns=["phone", "notes"])
    path = tmp_path / "service_requests.xlsx"
    _xlsx_with_long_cell(path, frame, 300_000)                 # one cell of 300,000 characters (Excel's limit: 32,767)
    assert path.stat().st_size < 50_000
    with pytest.raises(DataFileError, match="a cell holds more than 32,767 characters"):
        io.read_raw(path, limits=study.limits)
    _xlsx_with_long_cell(path, frame, 30_000)                  # a long cell Excel allows passes this check ...
    limits = study.limits.model_copy(update={"max_decompressed_bytes": 20_000})
    with pytest.raises(DataFileError, match=r"parts decompress to [\d,]+ bytes, more than the limit of 20,000"):
        io.read_raw(path, limits=limits)                       # ... and the parts' total is bounded like a .csv.gz
    table = io.read_raw(path, limits=study.limits)
    assert max(len(str(c)) for c in table.frame.columns) >= 30_000 and len(table.frame) == 5   # (the header's cell)


def test_chart_baseline_outside_the_data_draws_no_limits_it_does_not_have(study):
    """tracking.chart_baseline: [2019Q1, 2019Q2] with data from 2024Q2: the figure was still captioned 'dashed: control
    limits from 2019Q1 to 2019Q2' with no limits drawn and nothing said about them."""
    from study.report import tracking as tracking_report
    from tests.test_narrative import fake_context

    months = [f"2025-{i:02d}" for i in range(1, 7)]
    charts = pd.DataFrame([{"metric": "csat_top2", "month": mo, "value": 0.5, "ucl": np.nan, "lcl": np.nan,
                            "centre": np.nan, "in_baseline": False, "used": False, "out_of_control": False, "side": ""}
                           for mo in months])
    ctx = fake_context(study, history={"charts": charts})
    assert tracking_report.control_chart_figure(ctx) is None
    text = str(tracking_report.chart_baseline_sentence(ctx))
    assert text.startswith("No control charts: fewer than two months of survey data fall in the baseline period "
                           f"{study.tracking.chart_baseline[0]} to {study.tracking.chart_baseline[1]}")
    with_limits = charts.assign(ucl=0.7, lcl=0.3, centre=0.5, in_baseline=True, used=True)
    ctx = fake_context(study, history={"charts": with_limits})
    assert tracking_report.control_chart_figure(ctx) is not None
    assert tracking_report.chart_baseline_sentence(ctx) is None


# --- a request log of a handful of requests ----------------------------------------------------

@pytest.fixture(scope="module")
def request_ctx(prepared_sample):
    from study.report import analysis

    data_dir, truth = prepared_sample
    return analysis.context(DEFAULT_STUDY_FILE, data_dir, truth["quarters"][-1], truth["quarters"][-2])


def _chapter_copy(ctx):
    from study.report import analysis

    ch = analysis.requests(ctx)["chapter"]
    return {k: (v.copy() if isinstance(v, pd.DataFrame) else v) for k, v in ch.items()}


def test_a_log_smaller_than_min_cell_size_shows_counts_only(request_ctx):
    """A quarter with one request: its channel row was suppressed, but the 'All channels' row and the sentences
    below the table gave the same request's response time, resolution time and 24-hour verdict."""
    import html

    from study.report import requests as RR

    ctx = request_ctx
    ch = _chapter_copy(ctx)
    t = ch["times_by_channel"]
    t["n"] = 0
    t.loc[0, "n"] = 1
    t.loc[t["channel"] == "(all)", "n"] = 1
    table = RR.channel_table(ctx, ch)
    assert (table[RR._("First response, median (min)")] == "—").all()
    assert table.iloc[-1][RR._("Requests")] == "1"
    text = html.unescape(str(RR.response_sentences(ctx, ch)))
    assert text == f"With fewer than {ctx.study.min_cell_size} requests in {ctx.quarter}, their response and resolution " \
                   "times are not shown."


def test_one_small_channel_beside_the_total_is_not_left_alone(request_ctx):
    """One channel suppressed and every other channel shown with the total: the total's shares less the shown
    channels' gave the hidden channel's back; the next smallest channel is suppressed with it."""
    from study.report import requests as RR

    ctx = request_ctx
    ch = _chapter_copy(ctx)
    t = ch["times_by_channel"]
    rows = t.index[t["channel"] != "(all)"]
    t.loc[rows[0], "n"] = ctx.study.min_cell_size - 1
    table = RR.channel_table(ctx, ch)
    hidden = table[RR._("First response, median (min)")] == "—"
    smallest_other = t.loc[rows[1:], "n"].idxmin()
    assert hidden.sum() == 2 and hidden.iloc[0] and hidden.iloc[list(t.index).index(smallest_other)]
    assert not hidden.iloc[-1]


@pytest.mark.parametrize("sampling, says, not_says", [
    ({"strata": "branch_id", "population": dict(BASE["sampling"]["population"]),
      "rake": [{"column": "segment", "shares": {"mass": 0.8, "affluent": 0.15, "private_banking": 0.05}}]},
     "The weights are then calibrated to the known shares of segment given in the study definition", "stratified by branch."),
    ({"weight": "w", "strata": "branch_id"}, "Their standard errors treat the sample as stratified by branch.",
     "calibrated"),
    ({"weight": "w"}, "weighted by the survey's weight column w", "stratified"),
])
def test_weighting_sentence_says_how_the_weights_were_made(tmp_path, sampling, says, not_says):
    """With raking margins the methods said only 'each respondent stands for the customers of the stratum divided by
    its respondents', untrue once the weights are raked; a weight column with strata said nothing of the strata."""
    import html

    from study.report import tracking as tracking_report
    from tests.test_narrative import fake_context

    st = load_study(_study_file(tmp_path, lambda d: d.update(sampling=sampling)))
    text = html.unescape(str(tracking_report.weighting_sentence(fake_context(st))))
    assert says in text and not_says not in text


def test_ai_table_of_small_channels_shows_counts_only(request_ctx):
    """The AI-by-channel table gave the containment and handoff of a channel with one conversation (and of the
    whole assistant when it had fewer than min_cell_size); now counts only, with complementary suppression."""
    import html

    from study.report import requests as RR

    ctx = request_ctx
    ch = _chapter_copy(ctx)
    by = ch["ai_by_channel"]
    assert len(by) >= 2
    by["ai_started"] = 100
    by.loc[by.index[0], "ai_started"] = 1
    table = RR.ai_table(ctx, ch)
    hidden = table[RR._("Resolved by the AI")] == "—"
    assert hidden.sum() == 2 and hidden.iloc[0] and not hidden.iloc[-1]
    assert table[RR._("AI conversations")].iloc[0] == "1"
    # the whole assistant below min_cell_size: every rate hidden, the sentence gives the count only
    ch["ai"]["ai_started"] = 2
    table = RR.ai_table(ctx, ch)
    assert table.iloc[-1][RR._("Resolved by the AI")] == "—"
    text = html.unescape(str(RR.ai_sentences(ctx, ch)))
    assert text == (f"The AI assistant started 2 conversations in {ctx.quarter}; with fewer than "
                    f"{ctx.study.min_cell_size}, their outcomes are not shown.")


def test_a_tiny_log_has_no_heatmap_or_peak(request_ctx, monkeypatch):
    """A log of fewer requests than min_cell_size drew the 7×24 heatmap (when each request came in) and named its
    peak hour; a log of one channel read '1 over 1 channels'."""
    import html

    from study.report import analysis, present
    from study.report import requests as RR

    ctx = request_ctx
    ch = _chapter_copy(ctx)
    heat = ch["heatmap"]
    heat["n"] = 0
    heat.loc[heat.index[5], "n"] = 1
    heat["per_day"] = heat["n"] / 13
    vol = ch["volume"].iloc[:1].copy()
    vol["n"], vol["share"] = 1, 1.0
    ch["volume"] = vol
    text = html.unescape(str(RR.volume_sentences(ctx, ch)))
    assert text == f"1 request was received in {ctx.quarter}, through {ctx.study.label(str(vol['channel'].iloc[0]))}."
    vol["n"] = 40
    assert html.unescape(str(RR.volume_sentences(ctx, ch))).startswith(f"40 requests were received in {ctx.quarter}, all")
    res = dict(analysis.requests(ctx))
    res["chapter"] = ch
    monkeypatch.setattr(analysis, "requests", lambda c: res)
    figures = []
    monkeypatch.setattr(present, "figure", lambda *a, **k: figures.append(a))
    for name in ("prose", "table", "heading"):
        monkeypatch.setattr(present, name, lambda *a, **k: None)
    RR.current_state(ctx)
    assert figures == []


# --- a share just below its threshold is not printed as the threshold -------------------------------

def test_share_just_below_the_threshold_is_not_printed_as_it():
    """A census coverage of 4498/5000 = 89.96 % against ≥ 90 % printed "90.0 %" beside "not met" (sentence, targets
    table, tracking); now with the decimals that keep it apart."""
    import html
    from types import SimpleNamespace

    from study.report import analysis, tables
    from study.report import requests as RR
    from study.stats import point_service as ps
    from tests.test_point_service import _with_coverage

    st = _with_coverage(True, 4498, 5000)
    lv = ps.level(st, "2025Q2")
    tg = ps.target_attainment(st, lv, None)
    assert tg.set_index("target").loc["cov", "status"] == "not met"
    ctx = analysis.Context(study=st, current=SimpleNamespace(quarter="2025Q2"), baseline=None, cache={"targets": tg})
    text = html.unescape(str(RR.coverage_sentences(ctx, lv)))
    assert "(89.96 %)" in text and "90.0 %" not in text, text
    row = tables.targets(ctx, tg).iloc[0]
    assert row["Observed"] == "89.96 %" and row["Threshold"] == "≥ 90.00 %"
    # exactly on the threshold, or far from it: the usual one decimal
    for covered, shown in ((4500, "90.0 %"), (4400, "88.0 %")):
        tg2 = ps.target_attainment(st, dict(lv, covered=covered, share=covered / 5000), None)
        assert tables.targets(ctx, tg2).iloc[0]["Observed"] == shown
    # a change in percentage points and an interval bound just off the threshold
    r = {"metric": "csat_top2", "kind": "change", "target_value": 0.02}
    f = tables.target_formatter(r, st)
    assert f(0.01996, 0) == f(0.02, 0) == "+2.0 pp"
    assert tables.digits_apart(f, [0.01996], [0.02]) == 2 and f(0.01996, 2) == "+1.996 pp"


def test_changes_caption_names_a_missing_quarter(study):
    """2024Q4 then 2025Q2: the table titled "Changes between consecutive quarters" compared non-adjacent quarters."""
    from study import i18n
    from study.report import tracking as tracking_report
    from tests.test_narrative import fake_context

    assert tracking_report.changes_caption(fake_context(study, history={"quarters": ["2025Q1", "2025Q2"]})) == \
        "Changes between consecutive quarters, p-values adjusted by Holm's method"
    ctx = fake_context(study, history={"quarters": ["2024Q3", "2024Q4", "2025Q2"]})
    assert tracking_report.changes_caption(ctx) == \
        "Changes between consecutive quarters present (2025Q1 has no data), p-values adjusted by Holm's method"
    ctx = fake_context(study, history={"quarters": ["2024Q2", "2025Q1"]})
    assert "(2024Q3, 2024Q4 have no data)" in tracking_report.changes_caption(ctx)
    with i18n.use("zh"):
        assert "2024年第三季度、2024年第四季度" in tracking_report.changes_caption(ctx)
    # the methods appendix says so too (it said "consecutive quarters" whatever the gap)
    said = " ".join(str(x) for x in tracking_report.methods_sentences(ctx))
    assert "2024Q3, 2024Q4 have no data: a change across them compares the quarters on either side" in said
    whole = fake_context(study, history={"quarters": ["2025Q1", "2025Q2"]})
    assert "no data" not in " ".join(str(x) for x in tracking_report.methods_sentences(whole))


def test_chart_sentence_on_a_queue_chart_does_not_sit_under_the_survey_figure(study):
    """The control-chart paragraph said "In 2025-05, Average waiting time fell below the lower control limit" under a
    figure that draws the survey figures only: the queue log's chart is named as not drawn, with where its values are."""
    import html

    from study.report import tracking as tracking_report
    from tests.test_narrative import fake_context

    rows = []
    for m in ("csat_top2", "waiting_minutes"):
        for i, month in enumerate(["2025-01", "2025-02", "2025-03"]):
            rows.append({"metric": m, "month": month, "value": 0.5, "lcl": 0.4, "ucl": 0.6, "centre": 0.5,
                         "used": i < 2, "in_baseline": i < 2, "out_of_control": i == 2,
                         "side": "above" if m == "csat_top2" else "below"})
    ctx = fake_context(study, history={"quarters": ["2024Q4", "2025Q1"], "charts": pd.DataFrame(rows)})
    text = [html.unescape(str(s)) for s in tracking_report.chart_sentences(ctx)]
    survey = [t for t in text if study.label("csat_top2") in t or "Satisf" in t]
    waiting = [t for t in text if "waiting" in t.lower()]
    assert len(text) == 2 and len(waiting) == 1 and len(survey) == 1
    assert "not drawn above" in waiting[0] and "table of monthly statistics" in waiting[0]
    assert "not drawn" not in survey[0]


@pytest.mark.parametrize("change, message", [
    (lambda d: d["questionnaire"]["items"][0].update(id="m__nps"), r"questionnaire.items\[0\].id: 'm__nps' starts with 'm__'"),
    (lambda d: d["questionnaire"]["outcomes"]["complaint"].update(column="m__complaint_rate"), "starts with 'm__'"),
    (lambda d: d.update(sampling={"weight": "m__w"}), "sampling.weight: 'm__w' starts with 'm__'"),
])
def test_survey_columns_named_like_the_indicator_columns_are_refused(tmp_path, change, message):
    """design_analysis adds m__<metric> indicator columns beside the survey's: an item m__nps was taken for the NPS
    indicator (two columns of one name)."""
    with pytest.raises(StudyDefinitionError, match=message):
        load_study(_study_file(tmp_path, change))


def test_measure_on_a_study_defined_share_is_tested_as_a_share(request_ctx):
    """effects.evaluate looked a measure's metric up without the study: information accuracy (a share the study
    defines) was compared as a continuous mean (Welch t) instead of the two-proportion test."""
    from study.stats import effects

    ctx = request_ctx
    m = ctx.study.measures[0].model_copy(update={"metrics": ["information_accuracy"]})
    st = ctx.study.model_copy(update={"measures": [m]})
    res = effects.evaluate(st, ctx.baseline.frames, ctx.current.frames, n_boot=0)
    ran = res[res["skipped"] == ""]
    assert len(ran) and set(res["kind"]) == {"binary"}
    ref = effects.compare(*(pd.Series([1.0, 0.0, 1.0, 1.0, 0.0, 1.0]) for _ in range(2)), kind="binary")
    assert set(ran.loc[ran["analysis"] != "difference-in-differences", "test"]) == {ref["test"]}


def test_short_row_labels_are_kept_on_one_line_in_chinese():
    """The Chinese segment table split 私人银行客户 after 私人银行客 (a narrow first column breaks CJK anywhere): short
    first-column labels carry a class the Chinese style sheet keeps on one line; long ones may still wrap."""
    import re

    from study.report import present

    css = (Path(report.__file__).parent / "templates" / "report.css").read_text(encoding="utf-8")
    assert re.search(r":lang\(zh\) table\.study td\.short \{ white-space: nowrap; \}", css)
    df = pd.DataFrame({"客户分层": ["大众客户", "私人银行客户", "这是一个很长很长的行标签说明文字"], "排队号数": ["1", "2", "3"]})
    html = present.table_html(df, "t")
    cells = re.findall(r'<td class="([^"]*)">([^<]*)</td>', html)
    short = {text for klass, text in cells if "short" in klass.split()}
    assert short == {"大众客户", "私人银行客户"}


def test_one_small_segment_is_not_left_alone_beside_the_bank_wide_means(request_ctx, monkeypatch):
    """A segment with one ticket showed its count only, but every other segment's means were shown beside the
    bank-wide waiting and handling means: the hidden ticket's times followed by subtraction. The next smallest segment
    is suppressed with it, and the range sentence names neither."""
    from study.report import analysis, present
    from study.report import requests as RR

    ctx = request_ctx
    pt = dict(analysis.process(ctx))
    seg = pt["by_segment"].copy()
    seg = seg[seg["segment"].notna() & (seg["segment"] != "<unknown>")].reset_index(drop=True)
    assert len(seg) >= 3
    seg.loc[0, "n"] = 1
    pt["by_segment"] = seg
    monkeypatch.setattr(analysis, "process", lambda c: pt)
    shown, prose = [], []
    monkeypatch.setattr(present, "table", lambda df, *a, **k: shown.append(df))
    monkeypatch.setattr(present, "prose", lambda md: prose.append(str(md)))
    RR.process_segments(ctx)
    table = shown[0]
    hidden = table[RR._("Waiting mean (min)")] == "—"
    assert hidden.sum() == 2
    names = set(table.loc[hidden, RR._("Segment")])
    assert not any(n in t for n in names for t in prose)


def test_weighted_month_of_effective_size_below_two_is_suppressed(study):
    """A month of 12 respondents, one of whom carries nearly all the weight (Kish n_eff 1.02), showed a weighted
    value that was that respondent's answer, and was charted against limits three times its SD wide."""
    from study.stats import trend

    y = np.array([1.0] + [0.0] * 11)
    w = np.array([1000.0] + [1.0] * 11)
    dates = ["2025-01-10"] * 12 + ["2025-02-10"] * 40 + ["2025-03-10"] * 40
    survey = pd.DataFrame({"interview_date": dates})
    ind = {"Q1": pd.DataFrame({"csat_top2": np.concatenate([y, np.tile([0.0, 1.0], 40)])})}
    weights = {"Q1": pd.Series(np.concatenate([w, np.ones(80)]))}
    months = trend.monthly({"Q1": survey}, study, indicators=ind, weights=weights)
    jan = months[months["month"] == "2025-01"].iloc[0]
    assert jan["n"] == 12 and jan["n_eff"] == pytest.approx(1011 ** 2 / (1000 ** 2 + 11)) and jan["value"] > 0.98
    hidden = trend.small_months(months, 10)
    assert "2025-01" in hidden and len(hidden) == 2     # with the next smallest month (complementary)
    # unweighted (no n_eff): a month of 12 is shown
    assert trend.small_months(months.assign(n_eff=np.nan), 10) == set()
    from study.report import tracking as tracking_report
    from tests.test_narrative import fake_context

    said = " ".join(str(s) for s in tracking_report.methods_sentences(
        fake_context(study, history={"suppressed_months": sorted(hidden), "monthly": months})))
    assert "effective sample size below 2" in said
    said = " ".join(str(s) for s in tracking_report.methods_sentences(
        fake_context(study, history={"suppressed_months": ["2025-02"], "monthly": months.assign(n_eff=np.nan)})))
    assert "Months with fewer than 10 respondents, and beside" in said and "effective sample size below 2" not in said


def test_pilot_against_control_leaves_out_a_group_smaller_than_min_cell_size(request_ctx):
    """The design-based pilot-against-control table ran with two respondents on a side and showed their weighted
    mean; a side with fewer than min_cell_size respondents is left out, as every small group is."""
    from study.report import analysis
    from study.report import design_analysis as dsa

    ctx = request_ctx
    t = dsa.pilot_control(ctx)
    assert len(t)
    n = int(t[["n_pilot", "n_control"]].min().min())
    for size, rows in ((n, len(t)), (n + 1, 0)):
        st = ctx.study.model_copy(update={"min_cell_size": size})
        small = analysis.Context(study=st, current=ctx.current, baseline=ctx.baseline, n_boot=20)
        assert len(dsa.pilot_control(small)) == rows


def test_a_channel_hidden_beside_a_small_one_is_not_named_in_the_sentences(request_ctx):
    """The channel suppressed beside a small one (complementary) was still named with its share in "The lowest share
    was on ...", from the same figures the table hid."""
    import html

    from study.report import requests as RR

    ctx = request_ctx
    ch = _chapter_copy(ctx)
    t = ch["times_by_channel"]
    rows = list(t.index[t["channel"] != "(all)"])
    t.loc[rows, "n"] = 1000 + np.arange(len(rows))
    t.loc[rows[0], "n"] = ctx.study.min_cell_size - 1
    partner = rows[1]   # the next smallest: hidden with it
    for h in ctx.study.service_requests.response_targets:
        t.loc[rows, f"share_within_{h.hours:g}h"] = 0.9
        t.loc[partner, f"share_within_{h.hours:g}h"] = 0.1
    hidden = RR.channel_table(ctx, ch)[RR._("First response, median (min)")] == "—"
    assert hidden.iloc[list(t.index).index(partner)]
    text = html.unescape(str(RR.response_sentences(ctx, ch)))
    assert ctx.study.label(str(t.loc[partner, "channel"])) not in text and "10.0 %" not in text


def test_verification_tickets_without_a_first_pass_are_not_called_absent(study):
    """A log whose verification tickets all lack a first-pass result said "No ticket of the business type … was
    recorded": the tickets were recorded, their first pass was not."""
    import html
    from types import SimpleNamespace

    from study.report import analysis
    from study.report import requests as RR
    from study.stats import point_service as ps
    from tests.test_point_service import _tickets

    log = _tickets(30, 5, types=("info_verification",))
    log["first_pass"] = pd.array([pd.NA] * len(log), dtype="boolean")
    acc = ps.accuracy(log, study)
    assert acc["n"] == 0 and acc["tickets"] == 30
    tg = ps.target_attainment(study, None, acc)
    r = tg.set_index("target").loc["information_accuracy"]
    assert r["status"] == "not measured" and "first-pass result" in r["note"]
    ctx = analysis.Context(study=study, current=SimpleNamespace(quarter="2025Q2"), baseline=None, cache={"targets": tg})
    text = html.unescape(str(RR.accuracy_sentences(ctx, acc)))
    assert text.startswith("30 tickets of the business type") and "none with a first-pass result" in text
    assert "No ticket" not in text
    assert ps.accuracy(_tickets(30, 5, types=("deposit",)), study)["tickets"] == 0


def test_complaint_rate_bound_just_above_the_target_is_not_printed_as_it(request_ctx):
    """A lower bound of 2.5004 complaints per million against a target of 2.50 was printed "[2.50, …]" beside "the whole
    interval lies above it"."""
    import html

    from study.report import requests as RR

    ctx = request_ctx
    ch = _chapter_copy(ctx)
    ch["per_million"] = {"visits": 1_000_000, "per_million": 3.1, "ci_low": 2.5004, "ci_high": 3.9}
    tg = pd.DataFrame([{"target": "c", "metric": "complaints_per_million", "kind": "level", "operator": "<=",
                        "target_value": 2.5, "observed": 3.1, "ci_low": 2.5004, "ci_high": 3.9, "status": "not met"}])
    text = html.unescape(str(RR.complaint_sentences(ctx, ch, tg)))
    assert "[2.5004, 3.9000]" in text and "target of 2.5000 per million" in text and "lies above it" in text, text
