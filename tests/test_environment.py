"""The pinned environment: environment.yml, requirements.in and requirements.lock agree."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from tests.conftest import ROOT


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            out[_norm(name)] = version
    return out


def _requirements_in() -> list[str]:
    return [_norm(line.strip()) for line in (ROOT / "requirements.in").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_environment_yml_matches_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = {_norm(n.split("==")[0]): n.split("==")[1] for n in pip}
    lock = _lock()
    assert sorted(conda) == sorted(_requirements_in()), "environment.yml lists other packages than requirements.in"
    for name, version in conda.items():
        assert lock[name] == version, f"{name}: environment.yml pins {version}, requirements.lock {lock[name]}"


def test_every_direct_dependency_is_locked():
    lock = _lock()
    missing = [n for n in _requirements_in() if n not in lock]
    assert not missing, f"not pinned in requirements.lock: {missing}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = [_norm(re.split(r"[<>=\[ ]", d)[0]) for d in project["dependencies"]]
    extras = project["optional-dependencies"]
    deps += [_norm(d) for d in extras["test"] + extras["dev"]]
    assert sorted(deps) == sorted(_requirements_in()), "pyproject dependencies differ from requirements.in"
    optional = [_norm(d) for name, ds in extras.items() if name not in ("test", "dev") for d in ds]
    assert not [n for n in optional if n not in lock], "an optional extra is not pinned in requirements.lock"


def test_installed_versions_match_lock():
    import importlib.metadata as md

    lock = _lock()
    for name in _requirements_in():
        assert md.version(name) == lock[name], f"{name} installed {md.version(name)}, locked {lock[name]}"


@pytest.mark.parametrize("lang", ["en", "zh", "en,zh"])
def test_make_report_prepares_every_quarter_in_every_language(tmp_path, lang):
    # The report tracks the whole history (issue 13), so `make report` prepares every quarter in data/raw first —
    # in every language (the Chinese rule once prepared only the quarter and its baseline: a shorter trend).
    import shutil
    import subprocess

    if shutil.which("make") is None:  # pragma: no cover
        pytest.skip("make is not installed")
    quarters = ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    for q in quarters:
        (tmp_path / "raw" / q).mkdir(parents=True)
    out = subprocess.run(["make", "-n", "-W", "study.yml", "report", f"LANG={lang}", f"DATA_DIR={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    prepared = [q for q in quarters if f"study prepare --quarter {q} " in out.stdout]
    assert prepared == quarters, out.stdout
    assert "study report --quarter 2025Q2" in out.stdout
