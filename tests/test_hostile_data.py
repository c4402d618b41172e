"""Hostile and faulty input (issue 11, data side): one test per case.

Each case ends in a clear message and exit code 2 without a traceback, or in rows rejected with a
reason; nothing executes, nothing leaks, and nothing is half-written.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from study import cli
from study.data import io, validate
from study.data.config import StudyDefinitionError, load_study
from study.errors import DataFileError, StudyError
from tests.conftest import QUARTER, env_for_subprocess, venv_python
from tests.test_validate import assert_user_error, manifest, pid, prepare, raw_path, run_cli


def processed(data_dir) -> Path:
    return data_dir / "processed" / QUARTER


# --- bounded resources -------------------------------------------------------------------------

def _survey_header(study) -> bytes:
    return (",".join(["respondent_id", "branch_id", "segment", "channel", "interview_date"] + study.item_ids
                     + ["overall_satisfaction", "recommend", "complaint"]) + "\n").encode()


def test_gzip_bomb_stops_at_the_decompression_limit(small_quarter, study_file, study, monkeypatch):
    # 10 MB of text in a few KB of gzip; with a 1 MB limit reading stops after the first MB.
    data_dir, _ = small_quarter
    raw_path(data_dir).unlink()
    body = _survey_header(study) + b"0," * (5 * 1024 * 1024)
    raw_path(data_dir, "survey.csv.gz").write_bytes(gzip.compress(body, compresslevel=9))
    assert raw_path(data_dir, "survey.csv.gz").stat().st_size < 100_000
    monkeypatch.setenv("STUDY_MAX_DECOMPRESSED_BYTES", str(1024 * 1024))
    env = {**env_for_subprocess(), "STUDY_MAX_DECOMPRESSED_BYTES": str(1024 * 1024)}
    proc = subprocess.run([venv_python(), "-m", "study", "validate", "--quarter", QUARTER, "--data-dir", str(data_dir),
                           "--study", str(study_file)], capture_output=True, text=True, env=env, timeout=120)
    assert_user_error(proc.returncode, proc.stderr, "survey.csv.gz", "decompresses to more than 1,048,576 bytes",
                      "STUDY_MAX_DECOMPRESSED_BYTES")


def test_gzip_of_zeros_is_refused_at_the_first_chunk(small_quarter, study_file):
    # The bomb: gzip of NUL bytes (took 13.8 GB). NUL never occurs in CSV text.
    data_dir, _ = small_quarter
    raw_path(data_dir, "process_times.csv").unlink()
    with gzip.open(raw_path(data_dir, "process_times.csv.gz"), "wb", compresslevel=1) as fh:
        for _ in range(50):
            fh.write(bytes(1024 * 1024))
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_file)
    assert_user_error(code, err, "process_times.csv.gz", "NUL bytes", "CSV UTF-8")


def test_plain_csv_over_the_size_limit(small_quarter, study):
    data_dir, _ = small_quarter
    path = raw_path(data_dir)
    limits = study.limits.model_copy(update={"max_decompressed_bytes": 1000})
    with pytest.raises(DataFileError, match=r"survey.csv: is [\d,]+ bytes, over the size limit; the limit is 1,000 bytes"):
        io.read_raw(path, limits=limits)


def test_csv_with_too_many_columns(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text(",".join(["a"] * 200_000) + "\n" + ",".join(["1"] * 200_000) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="the header has 200,000 columns, more than the limit of 1,000"):
        io.read_raw(path)


def test_header_line_without_newline(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_bytes(b"a" * (2 * 1024 * 1024))
    with pytest.raises(DataFileError, match="first line is longer than"):
        io.read_raw(path)


def _xlsx_with_far_cell(path: Path, frame: pd.DataFrame, drop_dimension: bool = False) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        ws.append([None if pd.isna(v) else v for v in row])
    ws["XFD200000"] = "x"
    wb.save(path)
    if drop_dimension:  # a writer that declares no used range: the bound must hold while reading
        tmp = path.with_suffix(".tmp")
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename.startswith("xl/worksheets/sheet"):
                    import re

                    data = re.sub(rb"<dimension[^>]*/>", b"", data)
                dst.writestr(item, data)
        tmp.replace(path)


@pytest.mark.parametrize("drop_dimension", [False, True])
def test_xlsx_with_a_cell_at_xfd200000(small_quarter, study_file, drop_dimension):
    data_dir, frames = small_quarter
    raw_path(data_dir).unlink()
    path = raw_path(data_dir, "survey.xlsx")
    _xlsx_with_far_cell(path, frames["survey"], drop_dimension)
    assert path.stat().st_size < 20_000
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", study_file)
    assert_user_error(code, err, "survey.xlsx", "16,384 columns", "beyond the limits", "export the data as CSV")


def test_parquet_over_the_uncompressed_limit(tmp_path, study):
    path = tmp_path / "benchmark.parquet"
    pq.write_table(pa.table({"bank": ["A"] * 100_000, "metric": ["m"] * 100_000, "value": [1.0] * 100_000}), path)
    limits = study.limits.model_copy(update={"max_decompressed_bytes": 10_000})
    with pytest.raises(DataFileError, match="100,000 rows × 3 columns would take about .* bytes once read; the limit is 10,000 bytes"):
        io.read_raw(path, limits=limits)


# --- study.yml ---------------------------------------------------------------------------------

def test_study_definition_too_large(tmp_path):
    path = tmp_path / "study.yml"
    path.write_text("name: x\n" + "# padding\n" * 120_000, encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match="at most 1,048,576 bytes"):
        load_study(path)


@pytest.mark.parametrize("text", ["name: " + "[" * 20_000 + "]" * 20_000 + "\n",
                                  "name: x\n" + "".join("  " * i + f"k{i}:\n" for i in range(2_000)) + "  " * 2_000 + "v: 1\n",
                                  "name: x\nq: " + "[" * 30 + "1" + "]" * 30 + "\n"])
def test_deeply_nested_study_definition(tmp_path, text):
    path = tmp_path / "study.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match="nested"):
        load_study(path)


def test_alias_bomb_in_study_definition(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "study.yml"
    path.write_text("name: x\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match="once YAML aliases"):
        load_study(path)


def test_unknown_keys_are_capped(tmp_path, study_file):
    import yaml

    raw = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    for i in range(5_000):
        raw[f"unknown_key_{i}"] = i
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StudyDefinitionError) as info:
        load_study(path)
    msg = str(info.value)
    assert "5,000 problem(s)" in msg and "... and 4,980 more" in msg
    assert len(msg.splitlines()) == 22


def test_hostile_study_definition_from_the_command_line(small_quarter, tmp_path):
    data_dir, _ = small_quarter
    path = tmp_path / "study.yml"
    path.write_text("name: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    code, out, err = run_cli("validate", "--quarter", QUARTER, "--data-dir", data_dir, "--study", path)
    assert_user_error(code, err, "study.yml", "nested")


# --- what is written -----------------------------------------------------------------------------

def test_formula_cells_are_neutralised_in_rejected_rows(small_quarter, study_file):
    data_dir, frames = small_quarter
    df = frames["survey"].astype(object)
    df.loc[0, "pro1"] = '=HYPERLINK("http://evil.example/","click")'
    df.loc[1, "pro2"] = "@SUM(A1:A9)"
    df.loc[2, "att1"] = "+cmd|' /C calc'!A0"
    df.loc[3, "exp1"] = "-3.5"           # a number: stays as it is (out of range, rejected)
    df.loc[4, "segment"] = "\tgold"
    df.loc[5, "channel"] = "-2+3"        # not a number: neutralised
    df.to_csv(raw_path(data_dir), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    text = (processed(data_dir) / "rejected_survey.csv").read_text(encoding="utf-8-sig")
    rejected = pd.read_csv(processed(data_dir) / "rejected_survey.csv", dtype=str, keep_default_na=False)
    by_row = rejected.set_index(rejected["source_row"].astype(int))
    assert by_row.loc[2, "pro1"] == "'=HYPERLINK(\"http://evil.example/\",\"click\")"
    assert by_row.loc[3, "pro2"] == "'@SUM(A1:A9)"
    assert by_row.loc[4, "att1"] == "'+cmd|' /C calc'!A0"
    assert by_row.loc[5, "exp1"] == "-3.5"
    assert by_row.loc[6, "segment"] == "'\tgold"
    assert by_row.loc[7, "channel"] == "'-2+3"
    for line in text.splitlines():
        for cell in line.split(","):
            assert not cell.lstrip('"').startswith(("=", "@", "+")), line


def test_neutralise_formulas_keeps_numbers():
    frame = pd.DataFrame({"n": [-1.5, 2.0], "t": pd.array(["-7", "=1+1"], dtype="string"), "r": ["\rx", "+4e3"]})
    out = io.neutralise_formulas(frame)
    assert list(io.neutralise_formulas(frame.rename(columns={"t": "=t"})).columns) == ["n", "'=t", "r"]
    assert out["n"].tolist() == [-1.5, 2.0]
    assert out["t"].tolist() == ["-7", "'=1+1"]
    assert out["r"].tolist() == ["'\rx", "+4e3"]


def test_rejected_rows_are_pseudonymised_and_undeclared_columns_dropped(small_quarter, study_file):
    data_dir, frames = small_quarter
    df = frames["survey"].astype(object)
    df["email"] = [f"person{i}@example.org" for i in range(len(df))]
    df.loc[3, "pro2"] = 9
    df.to_csv(raw_path(data_dir), index=False)
    p = frames["process_times"].copy()
    p["staff_name"] = "Zhang San"
    p.loc[2, "branch_id"] = "B99"
    p.to_csv(raw_path(data_dir, "process_times.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = pd.read_csv(processed(data_dir) / "rejected_survey.csv", dtype=str)
    assert rejected["respondent_pid"].tolist() == [pid(df.loc[3, "respondent_id"], "respondent")]
    assert rejected["customer_pid"].tolist() == [pid(df.loc[3, "customer_id"], "customer")]
    assert not {"respondent_id", "customer_id", "phone", "comment", "email"} & set(rejected.columns)
    rejected_p = pd.read_csv(processed(data_dir) / "rejected_process_times.csv", dtype=str)
    assert rejected_p["ticket_pid"].tolist() == [pid(p.loc[2, "ticket_id"], "ticket")]
    assert not {"ticket_id", "customer_id", "staff_name"} & set(rejected_p.columns)
    for name in os.listdir(processed(data_dir)):
        blob = (processed(data_dir) / name).read_bytes()
        assert b"@example.org" not in blob and "Zhang San".encode() not in blob, name
        assert df.loc[3, "respondent_id"].encode() not in blob, name
    m = manifest(data_dir)
    assert m["undeclared_columns_dropped"] == {"survey": ["email"], "process_times": ["staff_name"], "benchmark": []}
    assert "email" in out


# --- prepare writes a quarter as one unit ------------------------------------------------------

def test_prepare_killed_midway_leaves_the_previous_quarter(small_quarter, study_file, study, monkeypatch):
    data_dir, frames = small_quarter
    assert prepare(data_dir, study_file)[0] == 0
    before = {p.name: p.read_bytes() for p in processed(data_dir).iterdir()}
    frames["survey"].head(20).to_csv(raw_path(data_dir), index=False)
    written = []
    real_write_parquet = io.write_parquet

    def record(frame, target):
        written.append(Path(target))
        real_write_parquet(frame, target)

    def killed(frame, target):
        raise KeyboardInterrupt  # the run is stopped right after its first write

    monkeypatch.setattr(io, "write_parquet", record)
    monkeypatch.setattr(io, "write_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        validate.prepare_quarter(study, study_file, data_dir, QUARTER)
    assert len(written) == 1 and written[0].parent.name.startswith(f".{QUARTER}.tmp-")  # built aside
    assert before == {p.name: p.read_bytes() for p in processed(data_dir).iterdir()}
    assert [p.name for p in (data_dir / "processed").iterdir()] == [QUARTER]
    io.load_quarter(data_dir, QUARTER)  # the previous quarter still loads, whole


def test_prepare_killed_with_sigkill(small_quarter, study_file):
    """The issue's case: kill -9 right after the first write. The old quarter stays whole and
    loads; the next prepare removes the dead run's temporary folder."""
    data_dir, frames = small_quarter
    assert prepare(data_dir, study_file)[0] == 0
    before = {p.name: p.read_bytes() for p in processed(data_dir).iterdir()}
    frames["survey"].head(20).to_csv(raw_path(data_dir), index=False)
    script = ("import os, signal, sys\n"
              "from study import cli\nfrom study.data import io\n"
              "real = io.write_parquet\n"
              "def write_then_die(frame, target):\n"
              "    real(frame, target)\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "io.write_parquet = write_then_die\n"
              "sys.exit(cli.main(sys.argv[1:]))\n")
    proc = subprocess.run([venv_python(), "-c", script, "prepare", "--quarter", QUARTER, "--data-dir", str(data_dir),
                           "--study", str(study_file)], capture_output=True, text=True, env=env_for_subprocess(), timeout=300)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in (data_dir / "processed").iterdir() if p.name.startswith(f".{QUARTER}.tmp-")]
    assert len(leftovers) == 1 and (leftovers[0] / "survey.parquet").is_file()
    assert before == {p.name: p.read_bytes() for p in processed(data_dir).iterdir()}
    io.load_quarter(data_dir, QUARTER)
    assert prepare(data_dir, study_file)[0] == 0
    assert [p.name for p in (data_dir / "processed").iterdir()] == [QUARTER]
    assert manifest(data_dir)["rows"]["survey"]["read"] == 20


def test_stale_temporary_folders_are_cleaned(small_quarter, study_file):
    data_dir, _ = small_quarter
    parent = data_dir / "processed"
    dead = parent / f".{QUARTER}.tmp-999999999-abc"      # a killed run's folder (no such process)
    dead.mkdir(parents=True)
    (dead / "survey.parquet").write_bytes(b"half")
    other = parent / ".2024Q4.tmp-999999999-abc"          # another quarter's: not ours to remove
    other.mkdir()
    assert prepare(data_dir, study_file)[0] == 0
    assert not dead.exists() and other.exists()
    assert sorted(p.name for p in parent.iterdir()) == [".2024Q4.tmp-999999999-abc", QUARTER]


def test_outputs_of_other_writers_survive_the_swap(small_quarter, study_file):
    data_dir, _ = small_quarter
    assert prepare(data_dir, study_file)[0] == 0
    log = processed(data_dir) / "process_times"
    log.mkdir()
    (log / "part-00000.parquet").write_bytes(b"a large log written by `sample --tickets`")
    assert prepare(data_dir, study_file)[0] == 0
    assert (log / "part-00000.parquet").is_file()


def test_checksum_mismatch_is_refused(small_quarter, study_file):
    data_dir, _ = small_quarter
    assert prepare(data_dir, study_file)[0] == 0
    m = manifest(data_dir)
    assert set(m["checksums"]) == {f"{d}.parquet" for d in ("survey", "process_times", "benchmark")} | \
        {f"rejected_{d}.csv" for d in ("survey", "process_times", "benchmark")}
    io.load_quarter(data_dir, QUARTER)
    # the mixed quarter of the issue: a new survey.parquet beside the old manifest
    survey = pd.read_parquet(processed(data_dir) / "survey.parquet").head(5)
    io.write_parquet(survey, processed(data_dir) / "survey.parquet")
    with pytest.raises(DataFileError, match=r"survey.parquet: does not match the checksum.*re-run `python -m study prepare --quarter 2025Q1`"):
        io.load_quarter(data_dir, QUARTER)
    (processed(data_dir) / "survey.parquet").unlink()
    with pytest.raises(DataFileError, match="missing; the quarter is incomplete"):
        io.load_quarter(data_dir, QUARTER)


def test_make_clean_removes_dot_folders():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text(encoding="utf-8")
    clean = makefile[makefile.index("\nclean:"):].split("\n\n")[0]
    assert "processed/.*tmp*" in clean and "reports/.*tmp*" in clean


# --- arguments and the file system ---------------------------------------------------------------

@pytest.mark.parametrize("quarter", ["../../elsewhere", "/etc", "2025Q5", "2025Q1/../../x", "2025q1", "2025Q1\n"])
def test_quarter_must_be_a_quarter_name(small_quarter, study_file, quarter):
    data_dir, _ = small_quarter
    for command in ("validate", "prepare"):
        code, out, err = run_cli(command, "--quarter", quarter, "--data-dir", data_dir, "--study", study_file)
        assert_user_error(code, err, "is not of the form 2025Q1")
    assert not (data_dir / "processed").exists()
    with pytest.raises(StudyError):
        io.raw_dir(data_dir, quarter)


def test_report_quarter_and_baseline_must_be_quarter_names(small_quarter, study_file):
    data_dir, _ = small_quarter
    for args in (("--quarter", "../../elsewhere"), ("--quarter", QUARTER, "--baseline", "/etc/passwd")):
        code, out, err = run_cli("report", *args, "--data-dir", data_dir, "--study", study_file)
        assert_user_error(code, err, "is not of the form 2025Q1")


def test_unwritable_processed_folder(small_quarter, study_file, monkeypatch, capsys):
    data_dir, _ = small_quarter
    target = data_dir / "processed"

    def denied(frame, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(io, "write_parquet", denied)
    code = cli.main(["prepare", "--quarter", QUARTER, "--data-dir", str(data_dir), "--study", str(study_file)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: ") and "permission denied" in err and str(target) in err
    assert not (target / QUARTER).exists() and list(target.iterdir()) == []


def test_processed_path_is_a_file(small_quarter, study_file):
    data_dir, _ = small_quarter
    (data_dir / "processed").write_text("not a folder")
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, str(data_dir / "processed"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_data_folder(small_quarter, study_file):  # pragma: no cover (runs as a normal user)
    data_dir, _ = small_quarter
    os.chmod(data_dir, 0o555)
    try:
        env = {k: v for k, v in env_for_subprocess().items() if k != "STUDY_PSEUDONYM_KEY"}
        proc = subprocess.run([venv_python(), "-m", "study", "prepare", "--quarter", QUARTER, "--data-dir", str(data_dir),
                               "--study", str(study_file)], capture_output=True, text=True, env=env, timeout=120)
        assert_user_error(proc.returncode, proc.stderr, "permission denied")
    finally:
        os.chmod(data_dir, 0o755)


# --- faulty content --------------------------------------------------------------------------

def test_timestamps_with_offsets_are_converted(small_quarter, study_file):
    data_dir, frames = small_quarter
    p = frames["process_times"].copy()
    local = pd.to_datetime(p.loc[0, ["issued_at", "called_at", "started_at", "finished_at"]])
    utc = local - pd.Timedelta(hours=8)   # Asia/Shanghai is UTC+8
    for c in ("issued_at", "called_at", "started_at", "finished_at"):
        p.loc[0, c] = utc[c].strftime("%Y-%m-%dT%H:%M:%SZ")
        p.loc[1, c] = pd.Timestamp(p.loc[1, c]).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    p.loc[2, "called_at"] = "2025-01-07 25:61:00+08:00"
    p.to_csv(raw_path(data_dir, "process_times.csv"), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    kept = pd.read_parquet(processed(data_dir) / "process_times.parquet").set_index("ticket_pid")
    assert kept.loc[pid(p.loc[0, "ticket_id"], "ticket"), "issued_at"] == local["issued_at"]
    assert kept.loc[pid(p.loc[1, "ticket_id"], "ticket"), "called_at"] == pd.Timestamp(frames["process_times"].loc[1, "called_at"])
    assert kept["issued_at"].dt.tz is None
    rejected = pd.read_csv(processed(data_dir) / "rejected_process_times.csv", dtype=str)
    assert rejected["reason"].tolist() == ["unparsable:called_at"]


def test_zone_aware_parquet_timestamps(small_quarter, study_file):
    data_dir, frames = small_quarter
    p = frames["process_times"].copy()
    for c in ("issued_at", "called_at", "started_at", "finished_at"):
        p[c] = pd.to_datetime(p[c]).dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")
    raw_path(data_dir, "process_times.csv").unlink()
    p.to_parquet(raw_path(data_dir, "process_times.parquet"))
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    kept = pd.read_parquet(processed(data_dir) / "process_times.parquet").set_index("ticket_pid")
    src = frames["process_times"].assign(ticket_pid=lambda d: d["ticket_id"].map(lambda v: pid(v, "ticket")))
    expect = pd.to_datetime(src.set_index("ticket_pid")["issued_at"])
    assert (kept["issued_at"] == expect.loc[kept.index]).all() and len(kept) == len(p)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_duplicate_column_header(small_quarter, study_file, suffix):
    data_dir, frames = small_quarter
    df = frames["survey"].copy()
    cols = list(df.columns)
    cols[cols.index("exp1")] = "pro1"  # the header says pro1 twice; pandas would call the second pro1.1
    df.columns = cols
    raw_path(data_dir).unlink()
    path = raw_path(data_dir, f"survey.{suffix}")
    df.to_csv(path, index=False) if suffix == "csv" else df.to_excel(path, index=False)
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, f"survey.{suffix}", "['pro1'] appear more than once")


def test_empty_trailing_header_cells_are_not_duplicates(tmp_path):
    path = tmp_path / "benchmark.csv"
    path.write_text("bank,metric,value,,\nA,m,1,,\n", encoding="utf-8")
    assert io.read_raw(path).frame.iloc[0, :3].tolist() == ["A", "m", "1"]


def test_source_row_counts_like_a_spreadsheet(small_quarter, study_file):
    data_dir, frames = small_quarter
    df = frames["survey"].astype(object)
    df.loc[1, "comment"] = "line one\nline two, with a comma\nline three"
    df.loc[5, "pro2"] = 7
    text = df.to_csv(index=False, lineterminator="\n")
    lines = text.split("\n")
    # blank lines after data records 2 and 3 (a spreadsheet shows them as empty rows)
    lines.insert(1 + 2 + 2, "")
    lines.insert(1 + 2 + 2 + 2, "")
    raw_path(data_dir).write_text("\n".join(lines), encoding="utf-8")
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = pd.read_csv(processed(data_dir) / "rejected_survey.csv", dtype=str)
    # header row 1, records 0..4 on rows 2..6 but two blank rows before record 5: row 5 + 2 + 2 = 9
    assert rejected["source_row"].astype(int).tolist() == [9]
    assert manifest(data_dir)["rows"]["survey"]["read"] == len(df)


def test_source_row_in_a_spreadsheet_with_title_rows(small_quarter, study_file):
    import openpyxl

    data_dir, frames = small_quarter
    df = frames["survey"].astype(object)
    df.loc[4, "pro2"] = 7
    raw_path(data_dir).unlink()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Customer survey 2025Q1"])       # row 1: a title
    ws.append([])                               # row 2: empty
    ws.append(list(df.columns))                 # row 3: the header
    for i, row in enumerate(df.itertuples(index=False)):
        if i == 2:
            ws.append([])                       # an empty row inside the data
        ws.append([None if pd.isna(v) or v == "" else v for v in row])
    wb.save(raw_path(data_dir, "survey.xlsx"))
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    rejected = pd.read_csv(processed(data_dir) / "rejected_survey.csv", dtype=str)
    # records 0, 1 on rows 4, 5; the empty row 6; records 2, 3, 4 on rows 7, 8, 9
    assert rejected["source_row"].astype(int).tolist() == [9]


def test_parquet_survey_with_wrong_column_types(small_quarter, study_file, study):
    data_dir, frames = small_quarter
    df = frames["survey"].copy()
    for c in study.item_ids:
        df[c] = df[c].astype(str)              # items stored as text "4"
    df["complaint"] = df["complaint"].astype(bool)  # a 0/1 outcome stored as a boolean
    df["interview_date"] = pd.to_datetime(df["interview_date"])
    raw_path(data_dir).unlink()
    df.to_parquet(raw_path(data_dir, "survey.parquet"))
    code, out, err = prepare(data_dir, study_file)
    assert code == 0, err
    assert manifest(data_dir)["rows"]["survey"]["kept"] == len(df)
    kept = pd.read_parquet(processed(data_dir) / "survey.parquet")
    assert kept["complaint"].sum() == frames["survey"]["complaint"].sum()


def test_every_row_rejected_is_a_file_error(small_quarter, study_file, study):
    data_dir, frames = small_quarter
    df = frames["survey"].copy()
    df["complaint"] = "yes"                   # the wrong coding for every row
    df["overall_satisfaction"] = 9            # a 0-10 scale where study.yml says 1-5
    df.to_csv(raw_path(data_dir), index=False)
    code, out, err = prepare(data_dir, study_file)
    assert_user_error(code, err, "survey.csv", "all 40 rows were rejected", "unparsable:complaint (40 rows)",
                      "out_of_range:overall_satisfaction (40 rows)", "nothing was written for 2025Q1")
    assert not (data_dir / "processed" / QUARTER).exists()


def test_peak_memory_of_validate_on_hostile_files(small_quarter, study_file, tmp_path):
    """Peak RSS of `validate` on the 1 GB gzip of zeros and the XFD200000 spreadsheet stays small."""
    data_dir, frames = small_quarter
    raw_path(data_dir, "process_times.csv").unlink()
    with gzip.open(raw_path(data_dir, "process_times.csv.gz"), "wb", compresslevel=1) as fh:
        for _ in range(200):
            fh.write(bytes(1024 * 1024))
    raw_path(data_dir).unlink()
    _xlsx_with_far_cell(raw_path(data_dir, "survey.xlsx"), frames["survey"])
    figures = {}
    for name in ("survey.xlsx", "process_times.csv.gz"):
        if name == "process_times.csv.gz":  # the spreadsheet stops the run first; measure the gzip alone
            raw_path(data_dir, "survey.xlsx").unlink()
            frames["survey"].to_csv(raw_path(data_dir), index=False)
        script = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True); "
                  "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        proc = subprocess.run([sys.executable, "-c", script, venv_python(), "-m", "study", "validate", "--quarter", QUARTER,
                               "--data-dir", str(data_dir), "--study", str(study_file)],
                              capture_output=True, text=True, env=env_for_subprocess(), timeout=300)
        code, kib = map(int, proc.stdout.split())
        assert code == 2
        figures[name] = kib / 1024
    assert all(mib < 600 for mib in figures.values()), figures
    (tmp_path / "peak_rss_mib.json").write_text(json.dumps(figures))
