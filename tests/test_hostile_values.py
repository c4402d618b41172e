"""Data values held to the rules of study.yml text, and plausible magnitudes (issue 22, items 4 and 5).

Each case of the issue is a test here: a bank name with U+202E, BEL and ESC; an ESC sequence in a CSV header;
10^30 digital sessions; characters the report's fonts cannot draw; invisible characters. The rules are defined
once (:mod:`study.data.values`); the last tests check that the RE2 patterns a DuckDB pass uses flag exactly what
the pandas path flags.
"""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest
import yaml

from study import fonts
from study.data import io, validate, values
from study.data.config import StudyDefinitionError, load_study
from study.errors import DataFileError
from tests.conftest import QUARTER, ROOT
from tests.test_validate import assert_user_error, manifest, prepare, raw_path, run_cli

HOSTILE_BANK = "Ba\u202eck A\x07\x1b[31m"


def _write_study(tmp_path, edit) -> object:
    raw = yaml.safe_load((ROOT / "study.yml").read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    edit(raw)
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --- item 4: data text rules ----------------------------------------------------------------------

def test_bank_name_with_bidi_override_bel_and_esc_is_rejected(small_quarter, study_file, study):
    data_dir, frames = small_quarter
    bench = frames["benchmark"].copy()
    bench.loc[bench["bank"] == "Bank A", "bank"] = HOSTILE_BANK
    bench.to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    kept = pd.read_parquet(data_dir / "processed" / QUARTER / "benchmark.parquet")
    assert not kept["bank"].str.contains("[\x00-\x1f\u202e]", regex=True).any()
    assert "Bank A" not in set(kept["bank"]) and len(kept) == len(bench) - 4
    assert manifest(data_dir)["rows"]["benchmark"]["rejected_by_reason"] == {"control_character": 4}
    text = (data_dir / "processed" / QUARTER / "rejected_benchmark.csv").read_text(encoding="utf-8-sig")
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "Ba\\u202eck A\\x07\\x1b[31m" in text and "control_character:bank" in text


def test_esc_sequence_in_a_csv_header_is_refused_and_not_echoed(small_quarter, study_file):
    data_dir, frames = small_quarter
    bench = frames["benchmark"].rename(columns={"value": "value\x1b[2J\x1b[31m"})
    bench.to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_file)
    assert_user_error(code, err, "benchmark.csv", "column name 'value\\x1b[2J\\x1b[31m'", "U+001B")
    assert "\x1b" not in err and "\x1b" not in out


def test_a_message_never_carries_a_raw_control_character(small_quarter, study_file):
    # required column missing: the message lists the columns found; a control in one of them is refused first,
    # and the CLI escapes whatever a message echoes (the last guard)
    data_dir, frames = small_quarter
    survey = frames["survey"].rename(columns={"pro1": "pro1\u202e"})
    survey.to_csv(raw_path(data_dir), index=False)
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_file)
    assert_user_error(code, err, "survey.csv", "pro1\\u202e")
    assert "\u202e" not in err


def test_controls_in_labels_of_the_logs_reject_the_row(small_quarter, study_file, study):
    data_dir, frames = small_quarter
    tickets = frames["process_times"].copy()
    tickets.loc[0, "counter_id"] = "B01-C01\x1b]0;pwned\x07"
    tickets.loc[1, "branch_id"] = "B01\u2066"
    tickets.to_csv(raw_path(data_dir, "process_times.csv"), index=False)
    res = validate.validate_quarter(study, study_file, data_dir, QUARTER)
    r = res.datasets["process_times"]
    assert r.counts["rejected_by_reason"] == {"control_character": 2, "unknown_branch": 1}
    reasons = set(r.rejected["reason"])
    assert "control_character:counter_id" in reasons
    assert "control_character:branch_id; unknown_branch:branch_id" in reasons
    assert not r.kept["counter_id"].str.contains("\x1b", regex=False).any()


@pytest.mark.parametrize("invisible", ["\u200b", "\u2028", "\u00ad", "\U000e0041\U000e007f", "\ufeff", "\u2060"])
def test_invisible_characters_are_removed_with_a_warning(small_quarter, study_file, study, invisible):
    data_dir, frames = small_quarter
    survey = frames["survey"].copy()
    survey.loc[:4, "branch_id"] = survey.loc[:4, "branch_id"] + invisible   # B01 + U+200B would be an unknown branch
    bench = frames["benchmark"].copy()
    bench.loc[bench["bank"] == "Bank B", "bank"] = "Bank" + invisible + " B"
    survey.to_csv(raw_path(data_dir), index=False)
    bench.to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    res = validate.validate_quarter(study, study_file, data_dir, QUARTER)
    s, b = res.datasets["survey"], res.datasets["benchmark"]
    assert s.counts["rejected"] == 0 and b.counts["rejected"] == 0
    assert set(s.kept["branch_id"]) <= set(study.branch_ids)
    assert "Bank B" in set(b.kept["bank"])
    cps = ", ".join(values.codepoint(c) for c in sorted(set(invisible)))
    assert any(n.startswith("column branch_id: invisible characters") and "5 value(s)" in n and cps in n for n in s.notes), s.notes
    assert any(n.startswith("column bank: invisible characters") for n in b.notes), b.notes
    assert any("invisible characters" in n for n in res.manifest["notes"]["survey"])


def test_invisible_character_in_a_header_is_removed(small_quarter, study, study_file):
    data_dir, frames = small_quarter
    frames["benchmark"].rename(columns={"bank": "\u200bbank"}).to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    res = validate.validate_quarter(study, study_file, data_dir, QUARTER)
    assert res.datasets["benchmark"].counts["rejected"] == 0
    assert any("column name '\\u200bbank'" in n for n in res.datasets["benchmark"].notes)


@pytest.mark.skipif(fonts.coverage() is None, reason="the report's fonts are not installed")
def test_characters_the_fonts_cannot_draw_are_warned_at_validate(small_quarter, study_file, study):
    assert fonts.undrawable(["中文 Bank A ≤ ±"]) == []                  # what the report uses is covered
    assert fonts.undrawable(["\U00020000 \U0001F3E6"]) == ["\U0001F3E6", "\U00020000"]
    data_dir, frames = small_quarter
    bench = frames["benchmark"].copy()
    bench.loc[bench["bank"] == "Bank C", "bank"] = "\U0001F3E6 Bank \U00020000"
    bench.to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_file)
    assert code == 0, err
    assert "column bank: 1 distinct value(s) hold characters the report's fonts cannot draw" in out
    assert "(U+20000)" in out and "(U+1F3E6)" in out


@pytest.mark.skipif(fonts.coverage() is None, reason="the report's fonts are not installed")
def test_study_text_the_fonts_cannot_draw_is_warned(tmp_path, small_quarter):
    data_dir, _ = small_quarter
    path = _write_study(tmp_path, lambda raw: raw["branches"][0].update(name="Central \U0001F3E6"))
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", path)
    assert code == 0, err
    assert "branches[0].name" in out and "U+1F3E6" in out and "cannot draw" in out


@pytest.mark.parametrize("text, fragment", [("Central\u200b", "invisible character U+200B"),
                                            ("Cen\u00adtral", "invisible character U+00AD"),
                                            ("Central\u2028", "invisible character U+2028"),
                                            ("Cent\u202eral", "control or text-direction character U+202E")])
def test_study_definition_refuses_invisible_and_direction_characters(tmp_path, text, fragment):
    path = _write_study(tmp_path, lambda raw: raw["branches"][0].update(name=text))
    with pytest.raises(StudyDefinitionError, match=re.escape(f"branches[0].name: contains the {fragment}")):
        load_study(path)


def test_id_with_a_trailing_newline_is_refused(tmp_path):
    path = _write_study(tmp_path, lambda raw: raw["branches"][0].update(id="B01\n"))
    with pytest.raises(StudyDefinitionError, match=r"branches\[0\]\.id: id 'B01\\x0a' is not allowed"):
        load_study(path)


def test_rejected_rows_show_controls_escaped_and_keep_the_formula_rule():
    frame = pd.DataFrame({"bank": pd.array(["=\x1b[31m", "\tok", "A\u202eB", None], dtype="string"),
                          "bad\x07col": [1, 2, 3, 4]})
    out = io.neutralise_formulas(frame)
    assert out["bank"].tolist()[:3] == ["'=\\x1b[31m", "'\tok", "A\\u202eB"]
    assert list(out.columns) == ["bank", "bad\\x07col"]


# --- item 5: plausible magnitudes -----------------------------------------------------------------

def test_ten_to_the_thirty_sessions_are_refused_with_the_key_path(tmp_path):
    path = _write_study(tmp_path, lambda raw: raw["service_requests"]["visits"]["digital_sessions"].update({"2025Q1": 10**30}))
    with pytest.raises(StudyDefinitionError) as exc:
        load_study(path)
    msg = str(exc.value)
    assert "service_requests.visits.digital_sessions.2025Q1: 1e+30 is beyond what a bank can have" in msg
    assert "at most 100,000,000,000" in msg and "limits.max_sessions_per_quarter" in msg


def test_a_bound_can_be_raised_in_study_yml(tmp_path):
    def edit(raw):
        raw["service_requests"]["visits"]["digital_sessions"]["2025Q1"] = 3 * 10**11
        raw.setdefault("limits", {})["max_sessions_per_quarter"] = 1e12
    assert load_study(_write_study(tmp_path, edit)).service_requests.visits.digital_sessions["2025Q1"] == 3 * 10**11


@pytest.mark.parametrize("edit, where", [
    (lambda raw: raw["branches"][1].update(counters=10**6), r"branches\[1\]\.counters: 1e\+06 is beyond .* counters of one branch"),
    (lambda raw: raw["channel_coverage"]["quarters"]["2025Q1"].update(covered=10**20, total=10**20),
     r"channel_coverage\.quarters\.2025Q1\.covered: 1e\+20 is beyond .*limits\.max_units"),
    (lambda raw: raw["business_types"][0].update(standard_minutes=1e9), r"business_types\[0\]\.standard_minutes: 1e\+09"),
    (lambda raw: raw["service_requests"]["complaint_grades"][0].update(deadline_hours=1e30),
     r"service_requests\.complaint_grades\[0\]\.deadline_hours: 1e\+30"),
])
def test_implausible_counts_and_durations_in_study_yml(tmp_path, edit, where):
    with pytest.raises(StudyDefinitionError, match=where):
        load_study(_write_study(tmp_path, edit))


@pytest.mark.parametrize("value", ["1e30", "inf", "-1e13"])
def test_implausible_benchmark_value_is_rejected(small_quarter, study_file, study, value):
    data_dir, frames = small_quarter
    bench = frames["benchmark"].astype({"value": object})
    bench.loc[bench["bank"] == "Bank A", "value"] = value
    bench.to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    res = validate.validate_quarter(study, study_file, data_dir, QUARTER)
    assert res.datasets["benchmark"].counts["rejected_by_reason"] == {"implausible_value": 4}


# --- one definition for both paths ----------------------------------------------------------------

SAMPLES = ["plain", "中文名称", "Ba\u202eck", "bell\x07", "esc\x1b[0m", "tab\tin", "nl\nin", "nel\x85", "del\x7f",
           "lrm\u200e", "alm\u061c", "iso\u2066x\u2069", "zw\u200bsp", "ls\u2028", "shy\u00ad", "tag\U000e0041",
           "bom\ufeff", "wj\u2060", "emoji\U0001F3E6", "ext\U00020000", "nbsp\u00a0", "", None]


def test_duckdb_patterns_flag_what_the_pandas_path_flags():
    import duckdb

    s = pd.Series(SAMPLES, dtype="string")
    scan = values.scan(s)
    con = duckdb.connect()
    rows = con.execute("SELECT v, regexp_matches(regexp_replace(v, ?, '', 'g'), ?), regexp_replace(v, ?, '', 'g') "
                       "FROM (SELECT unnest(?) AS v, generate_subscripts(?, 1) AS i) ORDER BY i",
                       [values.INVISIBLE_RE2, values.REFUSED_RE2, values.INVISIBLE_RE2, SAMPLES, SAMPLES]).fetchall()
    assert [r[1] for r in rows[:-1]] == scan.refused.tolist()[:-1]
    assert [r[2] for r in rows[:-1]] == scan.text.tolist()[:-1]
    python = [bool(values.REFUSED.search(values.INVISIBLE.sub("", v))) if v is not None else False for v in SAMPLES]
    assert python == scan.refused.tolist()
    assert scan.refused.tolist() == [False, False, True, True, True, True, True, True, True, True, True, True, False, False,
                                     False, False, False, False, False, False, False, False, False]


def test_escape_names_every_hidden_character():
    assert values.escape("a\x1b\u202e\u200b\U000e0041中") == "a\\x1b\\u202e\\u200b\\U000e0041中"
    assert values.shown("x" * 100 + "\x07", limit=10) == "'xxxxxxxxxx…'"
    with pytest.raises(DataFileError, match=r"column name 'a\\x1bb'"):
        values.clean_header(["ok", "a\x1bb"], "file.csv")
