"""The results store of one report run: each analysis computed once, read by every chapter.

A report run executes one notebook per chapter, each in its own kernel (or one after another in a
warm kernel). The chapters share their analyses (the driver analysis feeds the summary, the current
state, the problems and the conclusions) through a folder of pickles that
:func:`study.report.render.render_report` creates for the run and passes to every notebook as its ``store``
parameter; ``analysis.context(..., store=store)`` attaches it to the :class:`~study.report.analysis.Context`
and :meth:`Context.once <study.report.analysis.Context.once>` reads and writes it. Keys carry a digest of
everything a result depends on (study definition, processed data, seed, resamples, baseline), so a
store reused by a second render of the same run (e.g. the report in another language) hands back the
same results, and a store can never serve a result computed from other inputs.

While one kernel computes a result, another that needs it waits for it (a lock file per key,
``fcntl.flock``) instead of computing it again. Results depend only on their inputs, so the waiting
changes no number. Outside a report run (a notebook opened in JupyterLab) there is no store and
each result is computed in the kernel, once per context.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from study.data.io import atomic_path

_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class RunStore:
    """A folder holding the results of one report run (pickles; written atomically)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def _file(self, key: str, suffix: str = ".pkl") -> Path:
        if not _KEY.match(key):
            raise ValueError(f"store key {key!r}: letters, digits, '_', '-' and '.' only")
        return self.path / f"{key}{suffix}"

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        """The stored result for ``key``; computed with ``compute()`` and stored when missing."""
        path = self._file(key)
        if path.is_file():
            return _load(path)
        self.path.mkdir(parents=True, exist_ok=True)
        with _locked(self._file(key, ".lock")):
            if path.is_file():  # computed by another kernel while this one waited
                return _load(path)
            value = compute()
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return value

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.path.glob("*.pkl")) if self.path.is_dir() else []


def open_store(store: RunStore | str | os.PathLike | None) -> RunStore | None:
    """A :class:`RunStore` from a notebook's ``store`` parameter ("" or None: no store)."""
    if store is None or isinstance(store, RunStore):
        return store
    return RunStore(store) if str(store) else None


def _load(path: Path) -> Any:
    with open(path, "rb") as fh:
        return pickle.load(fh)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no waiting, a result may be computed twice
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
