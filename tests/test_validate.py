"""Validation: bad inputs, one file each — exit code, message, and nothing lost (kept + rejected = read)."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pandas as pd
import pyarrow.parquet as pq
import pytest

from study.data import io, validate
from study.errors import DataFileError
from tests.conftest import QUARTER, env_for_subprocess, venv_python


def run_cli(*args, cwd=None):
    proc = subprocess.run([venv_python(), "-m", "study", *map(str, args)], capture_output=True, text=True,
                          env=env_for_subprocess(), cwd=cwd, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def prepare(data_dir, study_file):
    return run_cli("prepare", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_file)


def raw_path(data_dir, name="survey.csv"):
    return data_dir / "raw" / QUARTER / name


def manifest(data_dir):
    return json.loads((data_dir / "processed" / QUARTER / "manifest.json").read_text())


def assert_nothing_lost(data_dir, dataset, read):
    m = manifest(data_dir)["rows"][dataset]
    kept = pq.read_table(data_dir / "processed" / QUARTER / f"{dataset}.parquet").num_rows
    rejected = pd.read_csv(data_dir / "processed" / QUARTER / f"rejected_{dataset}.csv", dtype=str)
    assert m["read"] == read
    assert m["kept"] == kept and m["rejected"] == len(rejected)
    assert kept + len(rejected) == read
    return rejected


def pid(value, namespace):
    """The keyed pseudonym validation writes for an id (the tests' fixed key)."""
    return validate.pseudonymise(pd.Series([value]), b"test-key-not-secret", namespace)[0]


def assert_user_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error: ")
    for f in fragments:
        assert f in err, f"expected {f!r} in: {err}"


# --- a valid quarter -----------------------------------------------------------------------------

def test_valid_quarter_is_kept_whole_and_pseudonymised(small_quarter, study_file):
    data_dir, frames = small_quarter
    before = {p.name: p.read_bytes() for p in (data_dir / "raw" / QUARTER).iterdir()}
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    for dataset, df in frames.items():
        rejected = assert_nothing_lost(data_dir, dataset, len(df))
        assert len(rejected) == 0, rejected
    survey = pq.read_table(data_dir / "processed" / QUARTER / "survey.parquet").to_pandas()
    # direct identifiers and free text never reach processed data
    for col in ("respondent_id", "customer_id", "phone", "comment", "id_number"):
        assert col not in survey.columns
    assert survey["respondent_pid"].str.fullmatch(r"[0-9a-f]{20}").all()
    assert survey["respondent_pid"].is_unique
    text = (data_dir / "processed" / QUARTER / "survey.parquet").read_bytes()
    assert frames["survey"]["phone"].iloc[0].encode() not in text
    # raw files are never modified
    assert before == {p.name: p.read_bytes() for p in (data_dir / "raw" / QUARTER).iterdir()}
    m = manifest(data_dir)
    assert m["inputs"]["survey"]["sha256"] == validate.file_sha256(raw_path(data_dir))
    assert set(m["packages"]) >= {"pandas", "python", "study"}
    assert len(m["study_sha256"]) == 64


def test_prepare_is_reproducible(small_quarter, study_file):
    data_dir, _ = small_quarter
    assert prepare(data_dir, study_file)[0] == 0
    out = data_dir / "processed" / QUARTER
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert prepare(data_dir, study_file)[0] == 0
    assert first == {p.name: p.read_bytes() for p in out.iterdir()}


def test_process_minutes_are_derived_from_timestamps(small_quarter, study_file):
    data_dir, frames = small_quarter
    assert prepare(data_dir, study_file)[0] == 0
    p = pq.read_table(data_dir / "processed" / QUARTER / "process_times.parquet").to_pandas()
    src = frames["process_times"].assign(ticket_pid=lambda d: d["ticket_id"].map(lambda v: pid(v, "ticket")))
    src = src.set_index("ticket_pid").loc[p["ticket_pid"]]
    expect = (pd.to_datetime(src["called_at"]) - pd.to_datetime(src["issued_at"])).dt.total_seconds().to_numpy() / 60
    assert (abs(p["waiting_minutes"].to_numpy() - expect) < 1e-9).all()
    assert (p["cycle_minutes"] >= p["handling_minutes"]).all()
    assert str(p["issued_at"].dtype).startswith("datetime64")


# --- file-level problems: exit 2, one message, no traceback ------------------------------------

def test_wrong_encoding(small_quarter, study_file):
    data_dir, frames = small_quarter
    frames["survey"].to_csv(raw_path(data_dir), index=False, encoding="utf-16")
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "survey.csv", "cannot be decoded", "UTF-8")
    assert not (data_dir / "processed" / QUARTER / "survey.parquet").exists()


def test_gbk_and_bom_encodings_are_detected(small_quarter, study_file):
    data_dir, frames = small_quarter
    frames["survey"].to_csv(raw_path(data_dir), index=False, encoding="gbk")
    table = io.read_raw(raw_path(data_dir))
    assert table.encoding == "gb18030"
    assert "排队时间太长，希望改进" in set(table.frame["comment"].dropna())
    frames["survey"].to_csv(raw_path(data_dir), index=False, encoding="utf-8-sig")
    table = io.read_raw(raw_path(data_dir))
    assert table.encoding == "utf-8-sig" and table.frame.columns[0] == "respondent_id"


def test_big5_is_decoded_as_big5_not_gb18030_mojibake(tmp_path):
    # Traditional Chinese labels in Big5: every byte string here also decodes as GB18030 (mojibake).
    text = "分行編號,分行名稱,意見\n" + "".join(
        f"B{i:02d},臺北{i}號分行,櫃檯服務態度親切，但等候時間過長\n" for i in range(12))
    data = text.encode("big5")
    assert data.decode("gb18030") != text  # what the toolkit used to return silently
    (tmp_path / "labels.csv").write_bytes(data)
    table = io.read_raw(tmp_path / "labels.csv")
    assert table.encoding in ("big5", "cp950", "big5hkscs")
    assert list(table.frame.columns) == ["分行編號", "分行名稱", "意見"]
    assert table.frame.loc[3, "分行名稱"] == "臺北3號分行"
    assert set(table.frame["意見"]) == {"櫃檯服務態度親切，但等候時間過長"}


def test_other_non_utf8_encodings_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes("name,city,remark\n".encode() + "José,Zürich,très bien – déjà vu\n".encode("cp1252") * 5)
    with pytest.raises(DataFileError, match=r"labels\.csv: the text is neither UTF-8 .*looks like") as err:
        io.read_raw(path)
    assert "CSV UTF-8" in str(err.value)


def test_missing_column(small_quarter, study_file):
    data_dir, frames = small_quarter
    frames["survey"].drop(columns=["branch_id"]).to_csv(raw_path(data_dir), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "survey.csv", "required column(s) missing: branch_id")


def test_empty_file(small_quarter, study_file):
    data_dir, _ = small_quarter
    raw_path(data_dir, "process_times.csv").write_bytes(b"")
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "process_times.csv", "empty")


def test_header_only_file(small_quarter, study_file):
    data_dir, frames = small_quarter
    frames["benchmark"].head(0).to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "benchmark.csv", "no data rows")


def test_missing_survey_file(small_quarter, study_file):
    data_dir, _ = small_quarter
    raw_path(data_dir, "survey.csv").unlink()
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "no survey file", "survey.csv")


def test_declared_source_not_supplied(small_quarter, study_file):
    # A study that declares a benchmark, and a quarter without the file: not an error.
    data_dir, _ = small_quarter
    raw_path(data_dir, "benchmark.csv").unlink()
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    assert "  benchmark: not supplied" in out.splitlines()
    m = manifest(data_dir)
    # the project's study also declares a request log, which this small quarter does not supply either
    assert "  service_requests: not supplied" in out.splitlines()
    assert m["datasets_missing"] == ["benchmark", "service_requests"] and set(m["rows"]) == {"survey", "process_times"}
    assert not (data_dir / "processed" / QUARTER / "benchmark.parquet").exists()
    q = io.load_quarter(data_dir, QUARTER)
    assert q.benchmark is None and not q.has("benchmark") and q.has("process_times")
    assert set(q.frames) == {"survey", "process_times"}


def test_unreadable_parquet(small_quarter, study_file):
    data_dir, _ = small_quarter
    raw_path(data_dir, "benchmark.csv").unlink()
    raw_path(data_dir, "benchmark.parquet").write_bytes(b"this is not parquet")
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "benchmark.parquet", "cannot be read")


def test_two_files_for_one_dataset(small_quarter, study_file):
    data_dir, frames = small_quarter
    frames["benchmark"].to_parquet(raw_path(data_dir, "benchmark.parquet"))
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "more than one benchmark file")


def test_broken_study_definition(small_quarter, tmp_path, study_file):
    data_dir, _ = small_quarter
    text = study_file.read_text(encoding="utf-8")
    broken = tmp_path / "study.yml"
    broken.write_text(text.replace("weight: 0.20, direction: lower, min: 3", "weight: 0.30, direction: lower, min: 3")
                      .replace("dimension: retention,", "dimension: retension,", 1), encoding="utf-8")
    code, out, err = prepare(data_dir, broken)
    assert_user_error(code, err, "study.yml", "questionnaire.items[29].dimension", "retension")
    assert not (data_dir / "processed").exists()  # stopped before any data was read


def test_our_bank_missing_from_benchmark(small_quarter, study_file, study):
    data_dir, frames = small_quarter
    df = frames["benchmark"]
    df[df["bank"] != study.benchmark.our_bank].to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "benchmark.our_bank")


# --- row-level problems: rejected with a reason, valid rows continue ----------------------------

def test_out_of_range_values(small_quarter, study_file, study):
    data_dir, frames = small_quarter
    df = frames["survey"].astype(object)
    df.loc[3, "pro2"] = 6
    df.loc[7, "recommend"] = 11
    df.loc[9, "att1"] = "good"
    df.to_csv(raw_path(data_dir), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = assert_nothing_lost(data_dir, "survey", len(df))
    by_id = rejected.set_index("respondent_pid")["reason"]
    assert by_id[pid(df.loc[3, "respondent_id"], "respondent")] == "out_of_range:pro2"
    assert by_id[pid(df.loc[7, "respondent_id"], "respondent")] == "out_of_range:recommend"
    assert by_id[pid(df.loc[9, "respondent_id"], "respondent")] == "unparsable:att1"
    # original values and the raw file row are kept; direct identifiers are not
    row = rejected.set_index("respondent_pid").loc[pid(df.loc[3, "respondent_id"], "respondent")]
    assert row["pro2"] == "6" and int(row["source_row"]) == 3 + 2
    assert "phone" not in rejected.columns and "comment" not in rejected.columns
    assert "respondent_id" not in rejected.columns and "customer_id" not in rejected.columns
    assert row["customer_pid"] == pid(df.loc[3, "customer_id"], "customer")
    assert manifest(data_dir)["rows"]["survey"]["rejected_by_reason"] == {"out_of_range": 2, "unparsable": 1}


def test_duplicate_ids(small_quarter, study_file):
    data_dir, frames = small_quarter
    df = frames["process_times"].copy()
    dup = df.iloc[[4]].copy()
    dup["first_pass"] = 1 - dup["first_pass"]
    df = pd.concat([df, dup], ignore_index=True)
    df.to_csv(raw_path(data_dir, "process_times.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = assert_nothing_lost(data_dir, "process_times", len(df))
    assert rejected["reason"].tolist() == ["duplicate_id:ticket_id"]
    assert int(rejected["source_row"].iloc[0]) == len(df) + 1  # the later copy is rejected


def test_reversed_timestamps(small_quarter, study_file):
    data_dir, frames = small_quarter
    df = frames["process_times"].copy()
    df.loc[2, ["started_at", "finished_at"]] = df.loc[2, ["finished_at", "started_at"]].to_numpy()
    df.loc[5, ["issued_at", "called_at"]] = df.loc[5, ["called_at", "issued_at"]].to_numpy()
    df.to_csv(raw_path(data_dir, "process_times.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = assert_nothing_lost(data_dir, "process_times", len(df)).set_index("ticket_pid")["reason"]
    assert rejected[pid(df.loc[2, "ticket_id"], "ticket")].startswith("finished_before_started")
    assert rejected[pid(df.loc[5, "ticket_id"], "ticket")] == "called_before_issued"


def test_absurd_duration_and_missing_timestamp(small_quarter, study_file):
    data_dir, frames = small_quarter
    df = frames["process_times"].copy()
    df.loc[1, "called_at"] = (pd.Timestamp(df.loc[1, "issued_at"]) + pd.Timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
    df.loc[1, ["started_at", "finished_at"]] = df.loc[1, "called_at"]
    df.loc[6, "finished_at"] = None
    df.to_csv(raw_path(data_dir, "process_times.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = assert_nothing_lost(data_dir, "process_times", len(df)).set_index("ticket_pid")["reason"]
    assert rejected[pid(df.loc[1, "ticket_id"], "ticket")] == "absurd_waiting"
    assert rejected[pid(df.loc[6, "ticket_id"], "ticket")] == "missing_value:finished_at"


def test_unknown_branch_and_business_type(small_quarter, study_file):
    data_dir, frames = small_quarter
    s = frames["survey"].copy()
    s.loc[0, "branch_id"] = "B99"
    s.to_csv(raw_path(data_dir), index=False)
    p = frames["process_times"].copy()
    p.loc[0, "business_type"] = "crypto_trading"
    p.to_csv(raw_path(data_dir, "process_times.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    assert assert_nothing_lost(data_dir, "survey", len(s))["reason"].tolist() == ["unknown_branch:branch_id"]
    assert assert_nothing_lost(data_dir, "process_times", len(p))["reason"].tolist() == ["unknown_business_type:business_type"]


def test_straight_lining_missing_answer_and_date(small_quarter, study_file, study):
    data_dir, frames = small_quarter
    df = frames["survey"].astype(object)
    df.loc[2, study.item_ids] = 4
    df.loc[4, "eff3"] = None
    df.loc[6, "interview_date"] = "2025-05-02"
    df.to_csv(raw_path(data_dir), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = assert_nothing_lost(data_dir, "survey", len(df)).set_index("respondent_pid")["reason"]
    assert rejected[pid(df.loc[2, "respondent_id"], "respondent")] == "straight_lining"
    assert rejected[pid(df.loc[4, "respondent_id"], "respondent")] == "missing_value:eff3"
    assert rejected[pid(df.loc[6, "respondent_id"], "respondent")] == "date_outside_quarter:interview_date"


def test_benchmark_unknown_metric(small_quarter, study_file):
    data_dir, frames = small_quarter
    df = pd.concat([frames["benchmark"], pd.DataFrame([{"bank": "Bank A", "metric": "branch_count", "value": 120}])])
    df.to_csv(raw_path(data_dir, "benchmark.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    assert assert_nothing_lost(data_dir, "benchmark", len(df))["reason"].tolist() == ["unknown_metric:metric"]


def test_excel_with_extra_header_row(small_quarter, study_file):
    data_dir, frames = small_quarter
    raw_path(data_dir).unlink()
    path = raw_path(data_dir, "survey.xlsx")
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame([["2025年第一季度客户满意度调查 (Customer survey 2025Q1)"]]).to_excel(xw, index=False, header=False, startrow=0)
        frames["survey"].to_excel(xw, index=False, startrow=2)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    assert "header found on sheet row 3" in out
    rejected = assert_nothing_lost(data_dir, "survey", len(frames["survey"]))
    assert len(rejected) == 0


def test_spss_and_parquet_inputs(small_quarter, study_file):
    import pyreadstat

    data_dir, frames = small_quarter
    raw_path(data_dir).unlink()
    sav = frames["survey"].drop(columns=["comment"])
    pyreadstat.write_sav(sav, str(raw_path(data_dir, "survey.sav")))
    raw_path(data_dir, "benchmark.csv").unlink()
    frames["benchmark"].to_parquet(raw_path(data_dir, "benchmark.parquet"))
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    assert len(assert_nothing_lost(data_dir, "survey", len(sav))) == 0
    assert len(assert_nothing_lost(data_dir, "benchmark", len(frames["benchmark"]))) == 0


def test_validate_writes_nothing(small_quarter, study_file):
    data_dir, _ = small_quarter
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_file)
    assert code == 0, err
    assert "read 40, kept 40, rejected 0" in out
    assert not (data_dir / "processed").exists()


def test_failed_prepare_leaves_previous_outputs(small_quarter, study_file):
    data_dir, frames = small_quarter
    assert prepare(data_dir, study_file)[0] == 0
    out = data_dir / "processed" / QUARTER
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    raw_path(data_dir, "process_times.csv").write_bytes(b"")
    assert prepare(data_dir, study_file)[0] == 2
    assert before == {p.name: p.read_bytes() for p in out.iterdir()}


def test_read_raw_reports_missing_folder(tmp_path):
    with pytest.raises(DataFileError, match="folder not found"):
        io.find_dataset_file(tmp_path / "2030Q1", "survey")


# --- any well-formed study: the README's minimal survey-only study ------------------------------

def readme_study(tmp_path):
    """The YAML block of README.md's "Bring your own data", written to a file as printed."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Bring your own data"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "study.yml"
    path.write_text(textwrap.dedent(block), encoding="utf-8")
    return path


def test_readme_minimal_study_works_as_printed(tmp_path):
    import numpy as np

    from study.data.config import load_study

    study_path = readme_study(tmp_path)
    study = load_study(study_path)
    assert not study.has_process and not study.has_benchmark
    assert len(study.dimension_ids) == 2 and len(study.item_ids) == 6 and study.questionnaire.scale.max == 10
    rng = np.random.default_rng(5)
    n = 30
    survey = pd.DataFrame({"respondent_id": [f"R{i}" for i in range(n)], "branch_id": study.branch_ids[0],
                           "interview_date": "2025-02-03"})
    for item in study.item_ids + ["overall_satisfaction"]:
        survey[item] = rng.integers(0, 11, n)
    data_dir = tmp_path / "data"
    (data_dir / "raw" / QUARTER).mkdir(parents=True)
    survey.to_csv(data_dir / "raw" / QUARTER / "survey.csv", index=False)
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_path)
    assert code == 0, err
    assert "not supplied" not in out  # the study declares no other source
    code, out, err = prepare(data_dir, study_path)
    assert code == 0, err
    m = manifest(data_dir)
    assert m["rows"]["survey"]["kept"] == n and set(m["rows"]) == {"survey"}
    assert m["datasets_missing"] == ["process_times", "benchmark"]
    q = io.load_quarter(data_dir, QUARTER)
    assert q.process_times is None and q.benchmark is None and list(q.frames) == ["survey"]
    assert not {"segment", "channel", "recommend"} & set(q.survey.columns)
    with pytest.raises(DataFileError, match="no process times"):
        q.process_times_path  # noqa: B018 - the property raises


def test_file_for_an_undeclared_source_is_refused(tmp_path, small_quarter):
    data_dir, frames = small_quarter
    study_path = readme_study(tmp_path)
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_path)
    assert_user_error(code, err, "process_times.csv: a process_times file is present",
                      "does not declare business_types and service_level")
    (data_dir / "raw" / QUARTER / "process_times.csv").unlink()
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_path)
    assert_user_error(code, err, "benchmark.csv: a benchmark file is present", "does not declare benchmark")
