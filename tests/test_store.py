"""The run's results store, lazily read datasets, warm kernels and quiet progress bars (issue 15)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import nbformat
import pytest

from study import progress
from study.data import io
from study.report import analysis
from study.report import render as report
from study.report.store import RunStore, open_store
from tests.conftest import ROOT


def test_store_computes_once_and_hands_back_the_value(tmp_path):
    st = RunStore(tmp_path / "store")
    calls = []
    assert st.get("a-1", lambda: calls.append(1) or {"x": [1, 2]}) == {"x": [1, 2]}
    assert st.get("a-1", lambda: calls.append(1) or "other") == {"x": [1, 2]}      # read, not computed
    assert calls == [1] and st.keys() == ["a-1"]
    assert RunStore(tmp_path / "store").get("a-1", lambda: 1 / 0) == {"x": [1, 2]}  # another process's view
    with pytest.raises(ValueError, match="store key"):
        st.get("../escape", lambda: 1)
    assert open_store("") is None and open_store(None) is None and open_store(str(tmp_path)).path == tmp_path


def _slow_compute(path: str, key: str, log: str) -> None:
    def compute():
        with open(log, "a") as fh:
            fh.write("computed\n")
        time.sleep(0.5)
        return 42

    assert RunStore(path).get(key, compute) == 42


def test_store_second_process_waits_instead_of_computing(tmp_path):
    log = tmp_path / "log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_slow_compute, args=(str(tmp_path / "s"), "k", str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert log.read_text() == "computed\n"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The sample's two quarters, prepared into a temporary data folder."""
    from study.data import config, validate

    data_dir = tmp_path_factory.mktemp("data")
    (data_dir / "raw").symlink_to(ROOT / "data" / "raw")
    study = config.load_study(ROOT / "study.yml")
    for q in ("2025Q1", "2025Q2"):
        validate.prepare_quarter(study, ROOT / "study.yml", data_dir, q)
    return data_dir


def test_contexts_sharing_a_store_compute_each_analysis_once(prepared, tmp_path):
    a = analysis.context(ROOT / "study.yml", prepared, "2025Q2", "2025Q1", n_boot=50, store=tmp_path / "s")
    b = analysis.context(ROOT / "study.yml", prepared, "2025Q2", "2025Q1", n_boot=50, store=str(tmp_path / "s"))
    first = analysis.dimension_table(a)
    stored = RunStore(tmp_path / "s").keys()
    assert any(k.startswith("dimensions") for k in stored)                  # the table and what it is built from
    assert b.once("dimensions", lambda: 1 / 0).equals(first)               # read from the store
    assert analysis.dimension_table(b).equals(first)
    assert RunStore(tmp_path / "s").keys() == stored                         # nothing computed a second time
    other = analysis.context(ROOT / "study.yml", prepared, "2025Q2", "2025Q1", n_boot=60, store=tmp_path / "s")
    assert other.fingerprint != a.fingerprint                                # other parameters, other key
    plain = analysis.context(ROOT / "study.yml", prepared, "2025Q2", "2025Q1", n_boot=50)
    assert plain.store is None and analysis.dimension_table(plain).equals(first)


def test_quarter_data_is_read_when_used(prepared):
    q = io.load_quarter(prepared, "2025Q2")
    raw = object.__getattribute__
    assert raw(q, "process_times") is io.NOT_READ and raw(q, "survey") is io.NOT_READ
    assert q.has("process_times") and raw(q, "process_times") is io.NOT_READ          # has() reads nothing
    cols = q.columns("process_times", ["branch_id"])
    assert list(cols.columns) == ["branch_id"] and raw(q, "process_times") is io.NOT_READ
    assert q.process_times_path.name == "process_times.parquet" and raw(q, "process_times") is io.NOT_READ
    assert q.service_requests_path.name == "service_requests.parquet" and raw(q, "service_requests") is io.NOT_READ
    full = q.process_times                                                               # first use reads it
    assert raw(q, "process_times") is full and len(full) == q.manifest["rows"]["process_times"]["kept"]
    assert cols["branch_id"].equals(full["branch_id"])
    assert q.columns("process_times", ["branch_id"])["branch_id"].equals(full["branch_id"])


def test_lazily_read_dataset_is_checked_against_the_manifest(prepared, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(prepared / "processed", copy / "processed")
    q = io.load_quarter(copy, "2025Q2")
    survey = copy / "processed" / "2025Q2" / "survey.parquet"
    survey.write_bytes(survey.read_bytes() + b"\0")          # changed after load_quarter verified the folder
    with pytest.raises(io.DataFileError, match="checksum"):
        assert q.survey is None


def _notebook(path: Path, chapter: int, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(f'quarter = "2025Q1"  # q\nbaseline = ""  # b\nchapter = {chapter}  # c')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": report.kernel_name(), "language": "python", "display_name": "k"}
    nbformat.write(nb, path)


def test_warm_kernel_runs_the_next_notebook_in_a_clean_namespace(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    pid_file = tmp_path / "pid.json"
    _notebook(nbs / "1.0-a.ipynb", 1, "import os, json\nfrom study.report import present\npresent.chapter(chapter, 'A')\n"
              f"json.dump(os.getpid(), open({str(pid_file)!r}, 'w'))\nleak = 41\npresent.table(__import__('pandas').DataFrame({{'x': [1]}}), 'T')")
    _notebook(nbs / "2.0-b.ipynb", 2, "import os, json\nfrom study.report import present\n"
              f"assert json.load(open({str(pid_file)!r})) == os.getpid(), 'not the same kernel'\n"
              "assert 'leak' not in globals() and os.getcwd() == " + repr(str(nbs)) + "\n"
              "assert present.current_chapter() is None\npresent.chapter(chapter, 'B')\n"
              "present.table(__import__('pandas').DataFrame({'x': [2]}), 'U')")
    res = report.render_report("2025Q1", "", notebooks_dir=nbs, out_dir=tmp_path / "out", pdf=False, jobs=1, timeout=120)
    page = res.html.read_text(encoding="utf-8")
    assert '<span class="label">Table 1.1</span>' in page and '<span class="label">Table 2.1</span>' in page
    b = nbformat.read(res.notebooks[1], as_version=4)
    assert [c.execution_count for c in b.cells if c.cell_type == "code"][0] == 1   # counts restart per notebook
    assert json.loads((res.folder / "render.json").read_text())["jobs"] == 1


def test_progress_bars_are_quiet_when_not_a_terminal(capsys):
    shown = progress.bar(range(3), desc="x")
    assert shown.disable and list(shown) == [0, 1, 2]
    assert capsys.readouterr().err == ""
