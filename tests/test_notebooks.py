"""The chapter notebooks are thin, parameterised and committed without outputs."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from study.data.config import SURVEY_COLUMNS, load_study
from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMETERS = {"quarter", "baseline", "study_file", "data_dir", "seed", "chapter"}


def test_there_are_chapter_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) >= 6
    assert all(re.fullmatch(r"([0-9]+|[A-Z])\.[0-9]-[a-z0-9-]+", n) for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_with_plain_commented_values(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    names = set()
    for node in tree.body:
        assert isinstance(node, ast.Assign), f"{path.name}: the parameters cell holds plain assignments only"
        assert isinstance(node.value, ast.Constant), f"{path.name}: parameter {ast.unparse(node.targets[0])} must be a literal"
        names.add(node.targets[0].id)
    assert REQUIRED_PARAMETERS <= names, f"{path.name}: missing parameters {REQUIRED_PARAMETERS - names}"
    for line in tagged[0].source.splitlines():
        if "=" in line:
            assert "#" in line, f"{path.name}: every parameter needs a comment: {line!r}"
    assert nb.metadata.get("kernelspec", {}).get("name") == "service-quality-study"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_thin_no_definitions_and_nothing_hard_coded(path):
    nb = nbformat.read(path, as_version=4)
    study = load_study()
    names = set(study.item_ids) | set(study.branch_ids) | set(study.dimension_ids) | set(study.business_type_ids)
    names |= {b.name for b in study.branches} | {study.benchmark.our_bank}
    names -= set(SURVEY_COLUMNS)  # column names of the data (a dimension may share one, e.g. "channel")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), \
                f"{path.name} cell {i}: define functions in the study package, not in a notebook"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in names, f"{path.name} cell {i}: hard-coded study name {node.value!r}"
                assert not re.search(r"\b20[0-9]{2}(Q[1-4])?\b", node.value), \
                    f"{path.name} cell {i}: hard-coded year or quarter in {node.value!r}"
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                raise AssertionError(f"{path.name} cell {i}: hard-coded number {node.value!r}")
