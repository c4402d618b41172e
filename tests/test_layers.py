"""The package's layers: each knows only the ones below it.

foundation (``errors``, ``fonts``, ``i18n``, ``metrics``, ``progress``, ``thresholds``) < ``study.data`` (study.yml, readers,
validation) < ``study.stats`` (DataFrames in, results out) < ``study.report`` (chapters, text, tables, figures,
rendering). The tools on top (``cli``, ``sample``, ``bench``, ``i18n_extract``) may use any layer. An import that
goes upwards — statistics importing the report, data importing statistics — fails here with the line that does it.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "study"
FOUNDATION = {"errors", "fonts", "i18n", "metrics", "progress", "thresholds"}
RANK = {"foundation": 0, "data": 1, "stats": 2, "report": 3, "tool": 4}


def layer_of(dotted: str) -> str:
    """``study.stats.effects`` -> "stats"; ``study.i18n`` -> "foundation"; ``study.cli`` -> "tool"."""
    parts = dotted.split(".")
    assert parts[0] == "study", dotted
    if len(parts) == 1:
        return "tool"
    head = parts[1]
    if head in RANK and head not in ("foundation", "tool"):
        return head
    return "foundation" if head in FOUNDATION else "tool"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every ``study`` module a file imports (``from study import x`` counts as ``study.x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "study":
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                # ``from study.stats import effects`` names a module; ``from study.data.config import Study`` a class
                is_module = (PACKAGE.parent / Path(*target.split("."))).with_suffix(".py").exists() or \
                    (PACKAGE.parent / Path(*target.split("."))).is_dir()
                found.append((node.lineno, target if is_module else node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "study"]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "<relative import>"))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_layer_is_a_folder():
    for layer in ("data", "stats", "report"):
        assert (PACKAGE / layer / "__init__.py").is_file()
    flat = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert set(flat) <= FOUNDATION | {"__init__", "__main__", "cli", "i18n_extract"}, flat


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_go_only_downwards(path):
    me = module_name(path)
    mine = layer_of(me)
    upward = []
    for line, target in imports_of(path):
        assert target != "<relative import>", f"{me}:{line}: use absolute imports (study.<layer>.<module>)"
        if RANK[layer_of(target)] > RANK[mine]:
            upward.append(f"{me}:{line} ({mine}) imports {target} ({layer_of(target)})")
    assert not upward, "\n".join(upward)


def test_layer_of_classifies():
    assert layer_of("study.stats.effects") == "stats"
    assert layer_of("study.data.config") == "data"
    assert layer_of("study.report.render") == "report"
    assert layer_of("study.i18n") == "foundation"
    assert layer_of("study.sample.log") == "tool"
    assert layer_of("study.cli") == "tool"


def test_an_old_flat_import_names_the_new_place():
    """``from study import present`` (a notebook written for the flat package) fails with the module's new place."""
    with pytest.raises(ImportError, match=r"study\.present is now study\.report\.present.*from study\.report import present"):
        exec("from study import present")
    with pytest.raises(ImportError, match=r"from study\.sample import log"):
        exec("from study import sample_log")
    import study

    assert all(importlib.import_module(new) for new in study.MOVED.values())
    from study import i18n, sample  # noqa: F401 - what stayed or is a package imports as before
