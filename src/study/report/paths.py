"""Paths of the machine kept out of what a render leaves behind (executed notebooks, render.json).

papermill records the notebook's input and output paths and its parameters (the study file, the
data folder, the run's results store) as absolute paths, in the notebook's metadata and in the
injected-parameters cell; copied to ``reports/<QUARTER>/notebooks``, they would tell every reader
of the report folder the user's home and folder layout. Written out, each such path is shown the
way a user names it: relative to the working directory when it lies inside it (``data``,
``study.yml``, ``notebooks/1.0-summary.ipynb``), otherwise by its last component. The render's
temporary folder is shown as the report folder it becomes. The HTML and PDF never held them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def display_path(path: Path | str, cwd: Path | str | None = None) -> str:
    """``path`` as a user names it: relative to ``cwd`` (default: the working directory) when inside it,
    else its last component."""
    p = Path(path)
    base = Path(cwd) if cwd is not None else Path.cwd()
    try:
        rel = p.relative_to(base)
    except ValueError:
        return p.name or str(p)
    return str(rel) if str(rel) != "." else "."


def _replace(value: Any, pairs: list[tuple[re.Pattern, str]]) -> Any:
    if isinstance(value, str):
        for pattern, shown in pairs:
            # "<folder>/x" -> "<shown>/x" ("x" when shown as "."); "<folder>" alone -> "<shown>"
            value = pattern.sub(lambda m, shown=shown: shown if not m.group(1) else
                                ("" if shown == "." else shown + m.group(1)), value)
        return value
    if isinstance(value, list):
        return [_replace(v, pairs) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, pairs) for k, v in value.items()}
    return value


def relative(value: Any, paths: Mapping[str, str]) -> Any:
    """``value`` (a string or nested lists/dicts of them) with every absolute path in ``paths`` (absolute ->
    shown) replaced, longest first, so that a folder inside another is replaced by its own name. A path
    ends where a name cannot go on: ``/root`` is replaced in ``/root/x`` and ``"/root"``, not in ``/rootfs``."""
    pairs = sorted(((str(k), v) for k, v in paths.items() if str(k) not in ("", os.sep)), key=lambda kv: -len(kv[0]))
    return _replace(value, [(re.compile(re.escape(k) + "(" + re.escape(os.sep) + r"|(?![\w.-]))"), v) for k, v in pairs])


def scrub_notebooks(folder: Path, paths: Mapping[str, str]) -> None:
    """Rewrite every executed notebook in ``folder`` with the absolute ``paths`` replaced (metadata, sources,
    outputs)."""
    import nbformat

    for nb_path in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.write(nbformat.from_dict(relative(dict(nb), paths)), nb_path)


def shown_paths(tmp: Path, final: Path, paths) -> dict[str, str]:
    """What each absolute path of a render is shown as: the render's temporary folder as the report folder
    it becomes, the given paths, the working directory (``.``) and the home folder (``~``)."""
    cwd = Path.cwd()
    out = {str(Path.home()): "~", str(cwd): "."}
    out.update({str(p): display_path(p, cwd) for p in paths})
    out[str(tmp)] = display_path(final, cwd)
    return out
