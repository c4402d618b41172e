"""The rendered improvement report: execute the chapter notebooks, assemble one HTML, print a PDF.

``render_report(quarter, baseline, ...)`` does, in one Python process:

1. **Execute** every chapter notebook (``notebooks/*.ipynb``, in natural name order) with
   papermill's Python API in a fresh kernel - the project kernel ``service-quality-study`` when
   installed, else ``python3`` (named explicitly: a notebook saved with another kernel name would
   otherwise fail with NoSuchKernel). The parameters ``quarter, baseline, study_file, data_dir``
   (and ``seed`` and any extra ones given) are injected into the cell tagged ``parameters``; only
   names that cell declares are passed. Executed notebooks are kept in
   ``reports/<QUARTER>/notebooks/``.
2. **Check** the outputs: an error output, a plain-text value (a bare expression such as a
   DataFrame repr), a raw ``pandas`` HTML table or an uncaptioned figure stops the render with a
   message naming the notebook and the cell. Streams (stdout, stderr, warnings) are dropped.
3. **Assemble** one self-contained ``report.html`` (nbconvert ``HTMLExporter`` with the template
   ``templates/study_report``, no input cells, no prompts): title page, contents with page
   numbers, numbered chapters, appendices (chapters numbered by a letter). CSS is inlined; images
   are data URIs; formulas are SVG rendered by matplotlib mathtext (see :mod:`study.report.present`);
   there is no script at all, and the file is checked for any external reference.
4. **Print** ``report.pdf`` (A4) with headless Chromium: CSS ``@page`` margin boxes give the
   "Page X of Y" footer; figures and tables are not split; chapters start on a new page; the
   PDF gets a document outline (bookmarks). A first print gives the page of every heading,
   table and figure (the PDF's named destinations, read with pypdf);
   the contents are filled in and the page printed again.
5. **Swap**: everything is rendered in a temporary folder next to the target, which replaces
   ``reports/<QUARTER>/`` only when all steps succeeded; on failure the previous report is left
   intact and the failed executed notebook is kept in ``reports/<QUARTER>.failed/``.

A failing cell raises :class:`study.errors.StudyError` naming the notebook, the cell, the line
and the error (the command line prints it and exits with code 2, without a traceback).
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.data import config
from study.errors import StudyError
from study.report import layout, pdftext, typeset
from study.report import paths as report_paths

if TYPE_CHECKING:
    import pandas as pd

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
PROJECT_KERNEL = "service-quality-study"
#: Chapter notebooks to render; None means every ``*.ipynb`` in the notebooks folder, by name.
NOTEBOOKS: Sequence[str] | None = None
#: Parameters every chapter notebook receives (if its parameters cell declares them).
STANDARD_PARAMETERS = ("quarter", "baseline", "study_file", "data_dir", "seed", "alpha")
DEFAULT_TIMEOUT = 600  # seconds per cell

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ReportError(StudyError):
    """The report could not be rendered (a failing notebook cell, a bad output, a missing tool)."""


class NotebookFailed(ReportError):
    """A chapter notebook raised an error; the message names the notebook, the cell and the line."""

    def __init__(self, message: str, notebook: str, cell: int | None, ename: str = "", evalue: str = ""):
        super().__init__(message)
        self.notebook, self.cell, self.ename, self.evalue = notebook, cell, ename, evalue

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return (type(self), (str(self), self.notebook, self.cell, self.ename, self.evalue))


@dataclass
class Chapter:
    notebook: str          # file name
    number: str            # "2", or a letter for an appendix
    body: str = ""         # HTML fragment
    items: list[dict] = field(default_factory=list)  # study display metadata, in order

    @property
    def appendix(self) -> bool:
        return self.number.isalpha()

    @property
    def section_id(self) -> str:
        return "chapter-section-" + re.sub(r"\W+", "-", self.number)


@dataclass
class RenderResult:
    quarter: str
    baseline: str
    folder: Path
    html: Path
    pdf: Path | None
    notebooks: list[Path]
    timings: dict[str, float]
    pages: int | None = None
    notes: list[str] = field(default_factory=list)
    #: language -> (html, pdf or None) of every language rendered (``html``/``pdf`` above: the first)
    files: dict[str, tuple[Path, Path | None]] = field(default_factory=dict)


def report_name(lang: str, suffix: str) -> str:
    """``report.html`` for English (the default, unchanged), ``report.zh.html`` for Chinese."""
    return f"report.{suffix}" if lang == "en" else f"report.{lang}.{suffix}"


# ---------------------------------------------------------------------------------------------
# Processes that die with the render


def die_with_parent() -> None:
    """Have the kernel send this process SIGKILL when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    Called in every process a render starts (notebook workers, kernels, Chromium), so that
    ``kill -9`` of ``python -m study report`` leaves nothing running: the workers die with the
    render, the kernels with their worker. A no-op where ``prctl`` does not exist.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return
    # the parent may have died before prctl: then nobody is left to signal us
    if os.getppid() == 1:
        os._exit(1)


_WORKER_KERNEL: WarmKernel | None = None  # the warm kernel of a render's worker process


def _worker_init(parent: int, warm: tuple | None = None) -> None:
    die_with_parent()
    if os.getppid() != parent:  # the render died while this worker started
        os._exit(1)
    if warm is not None:  # (kernel name, log folder, threads): one kernel for this worker's notebooks
        import multiprocessing.util

        global _WORKER_KERNEL
        kernel, log_dir, threads = warm
        _WORKER_KERNEL = WarmKernel(kernel, Path(log_dir) / f"kernel-{os.getpid()}.log", threads)
        # shut down cleanly when the worker exits (it would die with the worker anyway)
        multiprocessing.util.Finalize(_WORKER_KERNEL, _WORKER_KERNEL.close, exitpriority=10)


# ---------------------------------------------------------------------------------------------
# Notebooks and kernels


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def discover_notebooks(notebooks_dir: Path | str = config.NOTEBOOKS_DIR,
                       names: Sequence[str | Path] | None = None) -> list[Path]:
    """Chapter notebooks in execution order: ``names`` (file names or paths) or every ``*.ipynb``."""
    base = Path(notebooks_dir)
    if names is not None:
        paths = [Path(n) if Path(n).is_absolute() or Path(n).exists() else base / n for n in names]
    else:
        if not base.is_dir():
            raise ReportError(f"{base}: notebooks folder not found")
        paths = sorted((p for p in base.glob("*.ipynb") if not p.name.startswith(".")), key=lambda p: _natural_key(p.name))
    paths = [p.resolve() for p in paths]  # papermill changes the working directory while it runs
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ReportError(f"notebook(s) not found: {', '.join(missing)}")
    if not paths:
        raise ReportError(f"{base}: no chapter notebooks (*.ipynb) to render")
    return paths


def kernel_name(preferred: str = PROJECT_KERNEL) -> str:
    """The project kernel if Jupyter knows it (``make setup`` registers it), else ``python3``.

    ``python3`` is ipykernel's built-in spec, which runs the interpreter running this code - the
    virtual environment's own Python when started from ``.venv/bin``.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    try:
        specs = KernelSpecManager().find_kernel_specs()
    except Exception:  # pragma: no cover - broken Jupyter paths
        specs = {}
    return preferred if preferred in specs else "python3"


# Libraries that start a thread pool per process (OpenBLAS, OpenMP, MKL): with several kernels at
# once each gets its share of the cores, as joblib/loky give their workers; oversubscribed BLAS
# threads spin against each other (the CFA took 3.9 s instead of 0.13 s beside a second kernel).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _kernel_manager_class(log_path: Path | None = None, threads: int | None = None):
    """nbclient's kernel manager, adapted for unattended runs.

    * The kernel's own stdout/stderr (start-up banners, "KeyboardInterrupt caught in kernel" at
      shutdown, crash messages) go to ``log_path`` instead of the terminal; a kernel that dies
      is reported with the tail of that log.
    * The kernel dies with the process that started it (:func:`die_with_parent`).
    * Kernel sockets are CurveZMQ-encrypted when both sides can (jupyter_client >= 8.10 with
      ``transport_encryption="auto"``; ipykernel >= 7.4 warns about plain-TCP kernels otherwise).
    * ``threads``: the thread pools of BLAS/OpenMP in the kernel (:data:`THREAD_VARIABLES`, unless
      the environment sets them already).
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    encrypt = "transport_encryption" in AsyncKernelManager.class_trait_names()
    if encrypt:
        import zmq

        encrypt = zmq.has("curve")

    class ReportKernelManager(AsyncKernelManager):
        if encrypt:
            @default("transport_encryption")
            def _encrypt_by_default(self):
                return "auto"

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # jupyter_client starts the kernel in a new session (for interrupts); it dies with the
            # process that runs the notebook all the same (ipykernel's parent poller is a backup)
            kw.setdefault("preexec_fn", die_with_parent)
            if threads is not None and isinstance(kw.get("env"), dict):
                for var in THREAD_VARIABLES:
                    kw["env"].setdefault(var, str(threads))
            if log_path is not None:
                fh = open(log_path, "ab")  # not a `with`: inherited by the kernel process
                kw.setdefault("stdout", fh)
                kw.setdefault("stderr", fh)
                try:
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
                finally:
                    fh.close()
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return ReportKernelManager


def _tail(path: Path | None, n: int = 6) -> str:
    if path is None or not path.is_file():
        return ""
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    return "\n".join("    " + ln for ln in lines[-n:])


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Names and default values declared in the notebook's ``parameters`` cell."""
    import papermill

    try:
        declared = papermill.inspect_notebook(str(path))
    except Exception as exc:
        raise ReportError(f"{path.name}: cannot read the notebook ({exc})") from None
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ReportError(f"{path.name}: no cell is tagged 'parameters'. Tag the cell that sets quarter, baseline, "
                          "study_file, data_dir ... (JupyterLab: property inspector > cell tags).")
    out = {}
    for name, spec in declared.items():
        try:
            out[name] = ast.literal_eval(spec.get("default", "None"))
        except (ValueError, SyntaxError):
            out[name] = spec.get("default")
    return out


def _error_line(traceback: Sequence[str]) -> tuple[int | None, str]:
    """(line number in the cell, source line) of the failing statement, from an IPython traceback."""
    lines = _ANSI.sub("", "\n".join(traceback)).splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*Cell In\s*\[\d*\],\s*line (\d+)", line)
        if not m:
            continue
        number = int(m.group(1))
        for follow in lines[i + 1:i + 40]:
            m2 = re.match(r"-+>\s*(\d+)\s?(.*)$", follow)
            if m2:
                return int(m2.group(1)), m2.group(2).strip()
            if re.match(r"\s*Cell In\s*\[", follow) or re.match(r"\s*File ", follow):
                break
        # a SyntaxError: the line follows the location
        for follow in lines[i + 1:i + 4]:
            if follow.strip() and not set(follow.strip()) <= {"^", "~"}:
                return number, follow.strip()
        return number, ""
    return None, ""


def _failure_message(exc, nb_path: Path, param_index: int | None, kept: Path | None) -> NotebookFailed:
    idx = getattr(exc, "cell_index", None)
    source_index = None
    if idx is not None:
        source_index = idx - 1 if (param_index is not None and idx > param_index) else idx
    line_no, line = _error_line(getattr(exc, "traceback", []) or [])
    if not line and line_no is not None:
        src = (getattr(exc, "source", "") or "").splitlines()
        line = src[line_no - 1].strip() if 0 < line_no <= len(src) else ""
    ename, evalue = getattr(exc, "ename", type(exc).__name__), _ANSI.sub("", str(getattr(exc, "evalue", exc)))
    where = f"cell {source_index + 1}" if source_index is not None else "a cell"
    count = getattr(exc, "exec_count", None)
    if count:
        where += f" (In [{count}])"
    if line_no is not None:
        where += f", line {line_no}"
    msg = f"notebook {nb_path.name} failed at {where}"
    if line:
        msg += f": {line}"
    msg += f"\n  {ename}: {evalue}"
    if kept is not None:
        msg += f"\n  the executed notebook, with the error, is kept in {kept}"
    return NotebookFailed(msg, nb_path.name, None if source_index is None else source_index + 1, ename, evalue)


# Run in a warm kernel before each notebook after its first: a notebook starts from the state a new
# kernel gives it, except for the modules already imported (which is the point).
_RESET = """\
get_ipython().run_line_magic("reset", "-f")
import os as _os, sys as _sys, warnings as _warnings
_os.chdir({cwd!r})
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
if "study.report.present" in _sys.modules:
    _sys.modules["study.report.present"].set_chapter(None)
if "pandas" in _sys.modules:
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        _sys.modules["pandas"].reset_option("all")
del _os, _sys, _warnings
get_ipython().history_manager.reset(new_session=True)
get_ipython().execution_count = 1
"""


class WarmKernel:
    """A kernel that executes several notebooks one after another (each worker of a render keeps
    one), so that kernel start and the imports of :mod:`study` (~1-2 s) are paid once per worker,
    not once per chapter. Between notebooks the namespace is reset (``%reset -f``), figures are
    closed, the chapter numbering of :mod:`study.report.present` and pandas' options are reset and the
    working folder is set to the notebook's.
    """

    def __init__(self, kernel: str, log: Path | None = None, threads: int | None = None) -> None:
        self.kernel, self.log, self.threads = kernel, log, threads
        self.km = None
        self.used = False

    def ready(self, cwd: Path):
        """The kernel manager for the next notebook: started, or reset after the previous one."""
        from jupyter_core.utils import run_sync

        if self.km is not None and not run_sync(self.km.is_alive)():
            self.close()
        if self.km is None:
            self.km = _kernel_manager_class(self.log, self.threads)(kernel_name=self.kernel)
            run_sync(self.km.start_kernel)(cwd=str(cwd))
            self.used = False
        elif self.used:
            self._run(_RESET.format(cwd=str(cwd)))
        self.used = True
        return self.km

    def _run(self, code: str) -> None:
        kc = self.km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            reply = kc.execute_interactive(code, silent=True, store_history=False, timeout=60, output_hook=lambda msg: None)
        finally:
            kc.stop_channels()
        if reply["content"].get("status") != "ok":
            raise ReportError(f"could not reset the kernel between notebooks: {reply['content'].get('evalue', '')}")

    @staticmethod
    def engine() -> str:
        """The papermill engine that runs a notebook in a given kernel manager (``km=``) and then
        closes its client's channels (papermill's own leaves them to the garbage collector, which
        warns "Could not destroy zmq context")."""
        import logging

        from papermill.clientwrap import PapermillNotebookClient
        from papermill.engines import NBClientEngine, papermill_engines

        class WarmEngine(NBClientEngine):
            @classmethod
            def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                         start_timeout=60, execution_timeout=None, **kwargs):
                kwargs.pop("input_path", None)
                kwargs.pop("timeout", None)
                kwargs.pop("startup_timeout", None)
                client = PapermillNotebookClient(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                                                 kernel_name=kernel_name, log=logging.getLogger("papermill"),
                                                 log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                                                 **kwargs)
                try:
                    return client.execute()
                finally:
                    if client.kc is not None:
                        client.kc.stop_channels()
                        client.kc = None

        papermill_engines.register("study-warm", WarmEngine)
        return "study-warm"

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        km, self.km = self.km, None
        if km is not None:
            try:
                run_sync(km.shutdown_kernel)(now=True)
            except Exception:  # already gone
                pass


def execute_notebook(path: Path, output: Path, parameters: Mapping[str, Any], *, kernel: str,
                     timeout: float | None = DEFAULT_TIMEOUT, cwd: Path | None = None,
                     failed_dir: Path | None = None, kernel_log: Path | None = None,
                     threads: int | None = None, warm: WarmKernel | None = None) -> None:
    """Execute one notebook with papermill; a failing cell raises :class:`NotebookFailed`.

    ``threads``: BLAS/OpenMP threads of the kernel (default: the libraries' own choice).
    ``warm``: run in this :class:`WarmKernel` instead of a kernel of its own."""
    import logging

    import papermill
    from papermill.exceptions import PapermillExecutionError

    declared = notebook_parameters(path)
    params = {k: v for k, v in parameters.items() if k in declared}
    import nbformat

    src = nbformat.read(path, as_version=4)
    param_index = next((i for i, c in enumerate(src.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    # papermill (and nbclient, which logs through papermill's logger) would print "Kernel died ..."
    # and the like; the StudyError raised below says it once, with the notebook and cell.
    pm_log = logging.getLogger("papermill")
    old_level = pm_log.level
    pm_log.setLevel(logging.CRITICAL)
    try:
        if warm is not None:
            kernel_log = warm.log
        for attempt in range(3):
            try:
                how = ({"km": warm.ready(cwd or path.parent), "engine_name": warm.engine()} if warm is not None
                       else {"kernel_manager_class": _kernel_manager_class(kernel_log, threads)})
                papermill.execute_notebook(str(path), str(output), parameters=params, kernel_name=kernel,
                                           progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                                           cwd=str(cwd or path.parent), execution_timeout=timeout, **how)
                break
            except RuntimeError as exc:
                # jupyter_client picks free ports, releases them and lets the kernel bind them; another
                # process can take one in between ("Address already in use"): start the kernel again
                if attempt == 2 or "Address already in use" not in _tail(kernel_log, 40) or "kernel" not in str(exc).lower():
                    raise
                if warm is not None:
                    warm.close()
                if kernel_log is not None and kernel_log.exists():
                    kernel_log.write_text("")
    except PapermillExecutionError as exc:
        kept = None
        if failed_dir is not None and output.exists():
            failed_dir.mkdir(parents=True, exist_ok=True)
            kept = failed_dir / path.name
            shutil.copyfile(output, kept)
            # the kept copy holds no absolute path of the machine either (study.report.paths)
            given = [Path(v) for v in parameters.values() if isinstance(v, str) and os.path.isabs(v)]
            shown = report_paths.shown_paths(output.parent, failed_dir, [*given, path.parent])
            report_paths.scrub_notebooks(failed_dir, shown)
        raise _failure_message(exc, path, param_index, kept) from None
    except TimeoutError:
        raise ReportError(f"notebook {path.name}: a cell ran longer than {timeout} s (the per-cell timeout); "
                          "raise it with timeout=... or look for a runaway loop") from None
    except Exception as exc:
        name = type(exc).__name__
        if name == "NoSuchKernel":
            raise ReportError(f"Jupyter kernel '{kernel}' is not installed: run `make setup` (it registers "
                              f"'{PROJECT_KERNEL}')") from None
        if name in ("DeadKernelError", "RuntimeError") or "kernel" in str(exc).lower():
            tail = _tail(kernel_log)
            raise ReportError(f"notebook {path.name}: the kernel died or did not start ({name}: {exc})"
                              + (f"\n  kernel log:\n{tail}" if tail else "")) from None
        raise
    finally:
        pm_log.setLevel(old_level)


# ---------------------------------------------------------------------------------------------
# Output checks


def check_outputs(nb, name: str) -> list[str]:
    """Refuse outputs that must not reach a reader; drop streams. Returns notes on what was dropped.

    Refused (``ReportError`` naming notebook and cell): error outputs; values shown only as plain
    text (a bare expression at the end of a cell, e.g. a DataFrame or number repr); pandas'
    own HTML tables (``class="dataframe"``, Styler tables) - use ``present.table``; images not
    wrapped by ``present.figure`` (no number, no caption); HTML outside the allow-list of
    :func:`html_problems` (script, event attributes, outside references ...), in an output or in a
    Markdown or raw HTML cell (:class:`UnsafeHTML`).
    """
    notes = []
    dropped = 0
    number = 0  # cell number in the source notebook (papermill's injected cell not counted)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        injected = "injected-parameters" in tags
        number += not injected
        where = f"notebook {name}, cell {number}" + (" (injected parameters)" if injected else "")
        if cell.cell_type == "markdown" and not REMOVE_TAGS & set(tags):
            from study.report.present import markdown_to_html

            check_fragment(markdown_to_html(str(cell.source)), where + " (Markdown)")
        elif cell.cell_type == "raw" and cell.metadata.get("raw_mimetype", "").lower() == "text/html":
            check_fragment(str(cell.source), where + " (raw HTML)")
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            otype = out.get("output_type")
            if otype == "stream":
                dropped += 1
                continue
            if otype == "error":
                raise ReportError(f"{where}: the output is an error ({out.get('ename')}: {_ANSI.sub('', str(out.get('evalue')))})")
            if otype in ("execute_result", "display_data"):
                data = out.get("data", {})
                if "application/vnd.jupyter.widget-view+json" in data:
                    dropped += 1
                    continue
                keys = set(data) - {"text/plain"}
                if not keys:
                    text = str(data.get("text/plain", "")).strip().splitlines()
                    first = text[0][:70] if text else ""
                    if first.startswith("<Figure size"):
                        raise ReportError(f"{where}: shows a figure without number and caption; use "
                                          "present.figure(fig, caption), or end the line with ';'")
                    raise ReportError(f"{where}: shows a raw value ({first!r}); display it with present.table / "
                                      "present.prose, or end the line with ';'")
                htm = str(data.get("text/html", ""))
                if 'class="dataframe' in htm or re.search(r'<table id="T_', htm):
                    raise ReportError(f"{where}: shows a DataFrame as pandas renders it; use present.table(df, caption)")
                if htm:
                    check_fragment(htm, where)
                elif "text/markdown" in data:
                    from study.report.present import markdown_to_html

                    check_fragment(markdown_to_html(str(data["text/markdown"])), where)
                if not htm and keys & {"image/png", "image/jpeg", "image/svg+xml"}:
                    raise ReportError(f"{where}: shows a figure without number and caption; use present.figure(fig, caption) "
                                      "(build figures with study.report.figures, which does not auto-display)")
            kept.append(out)
        cell["outputs"] = kept
    if dropped:
        notes.append(f"{name}: {dropped} stream/widget output(s) (print, warnings, progress) left out of the report")
    return notes


#: Cells with one of these tags are left out of the report (e.g. a note for JupyterLab users).
REMOVE_TAGS = {"remove-cell", "remove_cell", "report-exclude"}


def remove_tagged_cells(nb) -> int:
    """Drop cells tagged ``remove-cell`` (or ``remove_cell``, ``report-exclude``); return how many."""
    before = len(nb.cells)
    nb.cells = [c for c in nb.cells if not REMOVE_TAGS & set(c.get("metadata", {}).get("tags", []))]
    return before - len(nb.cells)


def _study_items(nb) -> list[dict]:
    items = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get("study")
            if isinstance(meta, dict):
                items.append(dict(meta))
    return items


# ---------------------------------------------------------------------------------------------
# HTML


def _exporter():
    from nbconvert import HTMLExporter

    from study.report.present import markdown_to_html

    exp = HTMLExporter(template_name="study_report", extra_template_basedirs=[str(TEMPLATES_DIR)])
    exp.exclude_input = True
    exp.exclude_input_prompt = True
    exp.exclude_output_prompt = True
    exp.exclude_anchor_links = True
    exp.register_filter("study_markdown", lambda text: markdown_to_html(str(text)))
    exp.register_filter("study_b64", lambda text: base64.b64encode(str(text).encode("utf-8")).decode("ascii"))
    return exp


def notebook_fragment(nb, name: str, exporter=None) -> str:
    """The HTML fragment of one executed (and checked) notebook."""
    exporter = exporter or _exporter()
    try:
        body, _ = exporter.from_notebook_node(nb)
    except ValueError as exc:  # e.g. a formula mathtext cannot parse in a Markdown cell
        raise ReportError(f"{name}: {exc}") from None
    return body


_HEADING = re.compile(r"<h([1-3])(\s[^>]*)?>(.*?)</h\1>", re.S)
_TAGS = re.compile(r"<[^>]+>")


def _text(fragment: str) -> str:
    return html.unescape(_TAGS.sub("", fragment)).strip()


def _toc_entries(chapters: list[Chapter]) -> tuple[list[dict], list[dict], list[dict], list[Chapter]]:
    """Contents (chapters and sections), tables and figures.

    Numbers sections: every ``<h2>``/``<h3>`` of a chapter gets the number of its place in the
    chapter ("2.1", "2.1.1"), whether it came from ``present.heading`` or from a Markdown cell, so
    the numbering has no gaps; an ``<h1>`` without a number (a Markdown ``#`` title) gets the
    chapter's. Every heading gets a unique id for the links in the contents.
    """
    from study.report.present import text_html

    toc, tables, figures = [], [], []
    used: set[str] = set()
    for ch in chapters:
        counters = {2: 0, 3: 0}
        from study.report.present import appendix_label

        label = appendix_label(ch.number) if ch.appendix else ch.number

        def fix(m, ch=ch, counters=counters, label=label):
            level, attrs, inner = int(m.group(1)), m.group(2) or "", m.group(3)
            num_m = re.match(r'\s*<span class="number">(.*?)</span>\s*(.*)$', inner, re.S)
            title = num_m.group(2) if num_m else inner
            if level == 1:
                number = _text(num_m.group(1)) if num_m else label
                if 'class="' not in attrs:
                    attrs += ' class="chapter-title"'
                base = "chapter-" + re.sub(r"[^0-9A-Za-z]+", "-", ch.number)
            else:
                counters[level] += 1
                if level == 2:
                    counters[3] = 0
                parts = [ch.number, str(counters[2])] + ([str(counters[3])] if level == 3 else [])
                number = ".".join(parts)
                base = "section-" + re.sub(r"[^0-9A-Za-z]+", "-", number)
            anchor, k = base, 2
            while anchor in used:
                anchor, k = f"{base}-{k}", k + 1
            used.add(anchor)
            attrs = re.sub(r'\sid="[^"]*"', "", attrs) + f' id="{anchor}"'
            inner = f'<span class="number">{html.escape(number)}</span> {title.strip()}'
            if level <= 2:
                toc.append({"kind": "chapter" if level == 1 else "section", "level": level, "anchor": anchor,
                            "number": number, "title": _strip_block(title),
                            "text": f"{number} {_text(title)}", "page": ""})
            return f"<h{level}{attrs}>{inner}</h{level}>"

        ch.body = _HEADING.sub(fix, ch.body)
        for item in ch.items:
            if item.get("kind") in ("table", "figure") and item.get("anchor"):
                # the caption as study.report.present rendered it (literal text, or Markdown if it was an Md)
                cap = str(item["caption_html"]) if "caption_html" in item else text_html(str(item.get("caption", "")))
                entry = {"anchor": item["anchor"], "number": item["label"], "title": _strip_block(cap),
                         "text": f"{item['label']} {_text(cap)}", "page": ""}
                (tables if item["kind"] == "table" else figures).append(entry)
    for i, e in enumerate(toc + tables + figures):
        e["key"] = f"e{i}"
    return toc, tables, figures, chapters


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("study")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _strip_block(fragment: str) -> str:
    """Inline HTML for a contents entry: keep inline markup (emphasis, formulas), drop links."""
    return re.sub(r"</?a\b[^>]*>", "", fragment).strip()


def _read_css() -> str:
    return (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")


def assemble_html(chapters: list[Chapter], *, quarter: str, baseline: str, title: str, title_zh: str = "",
                  organisation: str = "", study_name: str = "", subtitle: str = "Quarterly service-quality improvement report",
                  date: str | None = None, lang: str = "en") -> tuple[str, dict]:
    """The report page; returns (html, context) - the context is re-used to fill in page numbers."""
    from study import i18n
    from study.i18n import _, pgettext

    with i18n.use(lang):
        toc, tables, figures, chapters = _toc_entries(chapters)
        if lang == "en":
            title_note = (f"Results for {quarter}" + (f", compared with {baseline}" if baseline else " (no baseline quarter)")
                          + ". Generated from the study definition and "
                          "the validated quarterly data by the study toolkit; the provenance appendix lists input "
                          "hashes, parameters and software versions.")
            shown_date = date or dt.date.today().isoformat()
        else:
            title_note = (_("Results for {}, compared with {}.").format(i18n.quarter(quarter), i18n.quarter(baseline)) if baseline
                          else _("Results for {} (no baseline quarter).").format(i18n.quarter(quarter)))
            title_note += _(" Generated from the study definition and the validated quarterly data by the study toolkit; "
                            "the provenance appendix lists input hashes, parameters and software versions.")
            title_zh = ""   # no English title on the Chinese cover
            shown_date = i18n.date(date or dt.date.today())
            if subtitle == "Quarterly service-quality improvement report":
                subtitle = _("Quarterly service-quality improvement report")
        words = {"quarter": pgettext("title page", "Quarter"), "compared": pgettext("title page", "Compared with"),
                 "date": pgettext("title page", "Date"), "study": pgettext("title page", "Study"),
                 "contents": pgettext("contents", "Contents"), "tables": pgettext("contents", "Tables"),
                 "figures": pgettext("contents", "Figures")}
        page = pgettext("page", "Page {page} of {pages}")
        before, _sep, rest = page.partition("{page}")
        middle, _sep, after = rest.partition("{pages}")
        footer = (f'"{_css_string(before)}" counter(page) "{_css_string(middle)}" counter(pages) '
                  f'"{_css_string(after)}"')
        ctx = dict(lang=i18n.HTML_LANG.get(lang, lang), version=_version(), date=shown_date, title=title, title_zh=title_zh,
                   organisation=organisation, study_name=study_name, subtitle=subtitle,
                   quarter=i18n.quarter(quarter) if lang != "en" else quarter,
                   baseline=i18n.quarter(baseline) if lang != "en" and baseline else baseline,
                   running_head=f"{title} · {i18n.quarter(quarter)}", title_note=title_note, words=words,
                   footer=footer if lang != "en" else "", second_lang="en" if lang != "en" else "zh-Hans",
                   toc=toc, tables=tables, figures=figures, chapters=chapters, css=_read_css())
    return _render_page(ctx), ctx


def _render_page(ctx: dict) -> str:
    import jinja2
    import markupsafe

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                             keep_trailing_newline=True)
    ctx = {"words": {"quarter": "Quarter", "compared": "Compared with", "date": "Date", "study": "Study",
                     "contents": "Contents", "tables": "Tables", "figures": "Figures"},
           "footer": "", "second_lang": "zh-Hans", **ctx}   # the English page's words when a caller gives none
    env.filters["css_string"] = _css_string
    env.filters["css_content"] = lambda text: markupsafe.Markup(str(text))  # built from _css_string parts
    # HTML built by study.report.present / nbconvert (checked by the allow-list) and the style sheet go in as
    # they are; every other field is text and escaped by Jinja.
    safe = dict(ctx, css=markupsafe.Markup(ctx["css"]), csp=CSP,
                chapters=[_SafeChapter(c) for c in ctx["chapters"]],
                toc=[_safe_entry(e) for e in ctx["toc"]], tables=[_safe_entry(e) for e in ctx["tables"]],
                figures=[_safe_entry(e) for e in ctx["figures"]])
    page = env.get_template("report.html.j2").render(**safe)
    page = layout.tall(layout.landscape(page, ctx.get("landscape", ())), ctx.get("tall", ()))
    # numbers with their units, dates, statistics and intervals never break across lines (study.report.typeset)
    return typeset.mark(page, "zh" if str(ctx.get("lang", "en")).startswith("zh") else "en")


class _SafeChapter:
    def __init__(self, ch: Chapter):
        import markupsafe

        self.appendix, self.section_id, self.notebook = ch.appendix, ch.section_id, ch.notebook
        self.body = markupsafe.Markup(ch.body)


def _safe_entry(e: dict) -> dict:
    import markupsafe

    return {**e, "title": markupsafe.Markup(e["title"])}


def _css_string(text: Any) -> str:
    """Text as the inside of a CSS string (the running head in ``@page``): no quote, backslash,
    newline or ``<`` can end the string or the style element."""
    import markupsafe

    out = "".join(ch if (ch.isalnum() or ch in " .,;:·-–—()/_+%") else f"\\{ord(ch):06x}" for ch in str(text))
    return markupsafe.Markup(out)


#: The Content Security Policy of report.html: no script, nothing from the network, images and
#: fonts only from data: URIs, inline styles only.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; "
       "form-action 'none'")

#: Elements report.html may contain (everything the templates, study.report.present and Markdown produce).
ALLOWED_TAGS = frozenset(
    "html head meta title style body header main nav section article aside footer div span p br hr "
    "h1 h2 h3 h4 h5 h6 ol ul li dl dt dd table caption thead tbody tfoot tr th td colgroup col "
    "figure figcaption img a em strong b i u s del ins sub sup small mark abbr code pre kbd samp var q wbr "
    "cite blockquote".split())
#: Attributes allowed on every element (plus ``data-*``), and per element.
GLOBAL_ATTRS = frozenset({"class", "id", "lang", "title", "style", "dir", "role", "aria-label", "aria-hidden",
                          "aria-describedby", "aria-labelledby"})
TAG_ATTRS = {"a": {"href"}, "img": {"src", "alt", "width", "height"}, "td": {"colspan", "rowspan", "headers"},
             "th": {"colspan", "rowspan", "scope", "headers"}, "ol": {"start", "reversed", "type"}, "li": {"value"},
             "col": {"span"}, "colgroup": {"span"}, "meta": {"charset", "name", "content", "http-equiv"},
             "abbr": {"title"}}
_META_NAMES = {"viewport", "generator", "date", "description", "author"}
_IMAGE_URI = re.compile(r"data:image/(png|jpeg|svg\+xml)(;base64)?,", re.I)
_ANCHOR = re.compile(r"#[A-Za-z][\w.:-]*")
_CSS_BAD = re.compile(r"url\s*\(\s*(?![\"']?data:)|@import|expression\s*\(|javascript:|behavior\s*:|-moz-binding", re.I)
#: Inside an SVG image: elements that could run script or embed a document.
_SVG_REFUSED = {"script", "foreignobject", "iframe", "object", "embed", "handler", "listener"}


class UnsafeHTML(ReportError):
    """report.html (or one output of a chapter notebook) holds something outside the allow-list."""


def _excerpt(text: str, n: int = 120) -> str:
    text = re.sub(r"\s+", " ", text)
    if len(text) > n:
        text = text[:n] + "…"
    return repr(text)


def _svg_problem(svg: str) -> str | None:
    """Why an SVG image (decoded from a data URI) is refused, or None."""
    from html.parser import HTMLParser

    if re.search(r"<!ENTITY", svg, re.I):
        return "an SVG image declares an entity"
    problems: list[str] = []

    class SVGCheck(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in _SVG_REFUSED:
                problems.append(f"an SVG image holds a <{tag}> element")
            for k, v in attrs:
                v = (v or "").strip()
                if k.startswith("on"):
                    problems.append(f"an SVG image has an event attribute {k}=")
                elif k in ("href", "xlink:href", "src") and not (_ANCHOR.fullmatch(v) or re.match(r"data:image/(png|jpeg);", v, re.I)):
                    problems.append(f"an SVG image refers to {v[:60]!r} ({k}=)")
                elif k == "style" and _CSS_BAD.search(v):
                    problems.append("an SVG image has a style loading something")

        handle_startendtag = handle_starttag

        def handle_data(self, data):
            if self.lasttag == "style" and _CSS_BAD.search(data):
                problems.append("an SVG image has a style sheet loading something")

    checker = SVGCheck(convert_charrefs=True)
    checker.feed(svg)
    checker.close()
    return problems[0] if problems else None


def _decode_data_uri(uri: str) -> str:
    from urllib.parse import unquote

    head, _, body = uri.partition(",")
    if ";base64" in head.lower():
        return base64.b64decode(body, validate=False).decode("utf-8", errors="replace")
    return unquote(body)


def html_problems(text: str, *, document: bool = False) -> list[dict]:
    """Everything in ``text`` outside the report's allow-list, parsed with :mod:`html.parser`.

    Each problem is a dict: ``what`` (the refused element or attribute, in words), ``excerpt``
    (the start tag), ``line`` and ``notebook`` (the chapter the element is in, from the
    ``<section data-notebook=...>`` around it, when there is one). ``document=True``: a whole page
    (``<meta>`` and ``<title>`` allowed; ``meta`` only as the charset, a name or this CSP).
    Allowed: the tags of :data:`ALLOWED_TAGS`, the attributes of :data:`GLOBAL_ATTRS` /
    :data:`TAG_ATTRS` and ``data-*``; ``src`` only as a ``data:image/png|jpeg|svg+xml`` URI (an SVG
    is decoded and refused if it holds script, ``foreignObject``, event attributes or outside
    references), ``href`` only as an in-document ``#anchor``, CSS without ``url()`` to outside
    the file or ``@import``.
    """
    from html.parser import HTMLParser

    problems: list[dict] = []
    sections: list[str | None] = []  # notebook of each open <section>
    svg_cache: dict[str, str | None] = {}

    class Check(HTMLParser):
        def refuse(self, what: str) -> None:
            chapter = next((n for n in reversed(sections) if n), None)
            problems.append({"what": what, "excerpt": self.get_starttag_text() or "", "line": self.getpos()[0],
                             "notebook": chapter})

        def handle_starttag(self, tag, attrs):
            if tag == "section":
                sections.append(dict(attrs).get("data-notebook"))
            if tag not in ALLOWED_TAGS or (not document and tag in ("html", "head", "body", "meta", "title")):
                self.refuse(f"a <{tag}> element")
                return
            allowed = GLOBAL_ATTRS | TAG_ATTRS.get(tag, set())
            names = [k for k, _ in attrs]
            if tag == "meta":
                a = dict(attrs)
                equiv = (a.get("http-equiv") or "").lower()
                if equiv and not (equiv == "content-security-policy" and a.get("content") == CSP):
                    self.refuse(f'a <meta http-equiv="{a.get("http-equiv")}">')
                elif "name" in a and a["name"] not in _META_NAMES:
                    self.refuse(f'a <meta name="{a["name"]}">')
            for k, v in attrs:
                v = v or ""
                if k.startswith("on"):
                    self.refuse(f"an event attribute {k}= on <{tag}>")
                elif k not in allowed and not re.fullmatch(r"data-[a-z0-9-]+", k):
                    self.refuse(f"an attribute {k}= on <{tag}>")
                elif k == "src":
                    m = _IMAGE_URI.match(v.strip())
                    if not m:
                        self.refuse(f"<{tag} src=...> not an image stored in the file ({v.strip()[:40]!r})")
                    elif m.group(1).lower() == "svg+xml":
                        if v not in svg_cache:
                            try:
                                svg_cache[v] = _svg_problem(_decode_data_uri(v.strip()))
                            except (ValueError, UnicodeError) as exc:
                                svg_cache[v] = f"an SVG image that cannot be decoded ({exc})"
                        if svg_cache[v]:
                            self.refuse(svg_cache[v])
                elif k == "href" and not _ANCHOR.fullmatch(v.strip()):
                    self.refuse(f"a link out of the document ({v.strip()[:60]!r})")
                elif k == "style" and _CSS_BAD.search(v):
                    self.refuse(f"a style attribute loading something ({v[:60]!r})")
            if names.count("src") > 1 or names.count("href") > 1:
                self.refuse(f"a repeated src/href on <{tag}>")

        def handle_startendtag(self, tag, attrs):
            self.handle_starttag(tag, attrs)
            if tag == "section":
                sections.pop()

        def handle_endtag(self, tag):
            if tag == "section" and sections:
                sections.pop()

        def handle_data(self, data):
            if self.lasttag == "style" and _CSS_BAD.search(data):
                m = _CSS_BAD.search(data)
                problems.append({"what": "a style sheet loading something (url() out of the file, @import)",
                                 "excerpt": data[max(0, m.start() - 40):m.end() + 40], "line": self.getpos()[0],
                                 "notebook": next((n for n in reversed(sections) if n), None)})

        def handle_pi(self, data):
            problems.append({"what": "a processing instruction", "excerpt": f"<?{data}>", "line": self.getpos()[0],
                             "notebook": None})

        def unknown_decl(self, data):
            problems.append({"what": "a declaration", "excerpt": f"<![{data}]>", "line": self.getpos()[0], "notebook": None})

    checker = Check(convert_charrefs=True)
    checker.feed(text)
    checker.close()
    return problems


def _refusal(problems: list[dict], where: str) -> UnsafeHTML:
    first = problems[0]
    place = where
    if first.get("notebook"):
        place += f", chapter notebook {first['notebook']}"
    msg = (f"{place}: refused {first['what']} (line {first['line']}): {_excerpt(first['excerpt'])}. Text from study.yml "
           "or the data must reach the report through study.report.present (which escapes it), never as raw HTML")
    if len(problems) > 1:
        msg += f"\n  and {len(problems) - 1} more: " + "; ".join(sorted({p["what"] for p in problems[1:]}))[:400]
    return UnsafeHTML(msg)


def check_fragment(fragment: str, where: str) -> None:
    """Refuse an HTML fragment (one notebook output or cell) outside the allow-list; ``where`` names it."""
    problems = html_problems(fragment)
    if problems:
        raise _refusal(problems, where)


def assert_self_contained(text: str) -> None:
    """Raise :class:`UnsafeHTML` (a ``ReportError``) unless the page passes the allow-list.

    The page is parsed with :mod:`html.parser` (see :func:`html_problems`): no script, frame,
    object, form, base, link or ``meta`` refresh, no event attribute, nothing loaded from outside
    the file. The message names the refused element or attribute, the chapter notebook it is in
    and an excerpt.
    """
    problems = html_problems(text, document=True)
    if problems:
        raise _refusal(problems, "report.html")
    m = re.search(r"<script\b", text, re.I)  # not even as text the parser let through (a comment, an attribute)
    if m:
        raise UnsafeHTML(f"report.html: refused a <script> element: {_excerpt(text[m.start():m.start() + 120])}")


# ---------------------------------------------------------------------------------------------
# PDF


def find_chromium() -> str:
    """Path of a Chromium/Chrome binary: $STUDY_CHROMIUM, else chromium, chromium-browser, google-chrome."""
    env = os.environ.get("STUDY_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    raise ReportError("Chromium is needed to print the PDF: install it (Debian/Ubuntu: `apt-get install chromium`) "
                      "or set STUDY_CHROMIUM to a Chrome/Chromium binary; or render with pdf=False")


def print_pdf(html_path: Path, pdf_path: Path, *, chromium: str | None = None, timeout: float = 120) -> None:
    """Print an HTML file to PDF with headless Chromium (page size and margins from the CSS @page)."""
    chromium = chromium or find_chromium()
    with tempfile.TemporaryDirectory(prefix="study-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
               "--disable-background-networking", "--mute-audio", f"--user-data-dir={profile}",
               "--no-pdf-header-footer", "--generate-pdf-document-outline",
               f"--print-to-pdf={pdf_path}", Path(html_path).resolve().as_uri()]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                 env={**os.environ, "HOME": profile},
                                 preexec_fn=die_with_parent if os.name == "posix" else None)
        except subprocess.TimeoutExpired as exc:
            tail = "\n".join(((exc.stderr or b"").decode("utf-8", "replace") if isinstance(exc.stderr, bytes)
                              else (exc.stderr or "")).strip().splitlines()[-5:])
            raise ReportError(f"Chromium did not finish printing {html_path} within {timeout} s"
                              + (f":\n{tail}" if tail else "")) from None
        except OSError as exc:
            raise ReportError(f"cannot run Chromium ({chromium}): {exc}") from None
    if res.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        tail = "\n".join((res.stderr or "").strip().splitlines()[-5:])
        raise ReportError(f"Chromium failed to print the PDF (exit {res.returncode}):\n{tail}")
    pdftext.repair(pdf_path)


PDF_OPTIONS = {"printBackground": True, "preferCSSPageSize": True, "displayHeaderFooter": False,
               "generateDocumentOutline": True, "generateTaggedPDF": True}


#: Seconds any one DevTools command (a page load, a print) may take before the render gives up.
DEVTOOLS_TIMEOUT = 60


class HeadlessChromium:
    """One headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

    Loads the report once and prints it as often as needed (the contents' page numbers are
    filled in between two prints without reloading), which saves a browser start and a page
    load per print compared with ``chromium --print-to-pdf``. POSIX only (file descriptors 3
    and 4 carry the protocol); :func:`print_pdf` is the one-shot fallback.

    Every wait is bounded (``timeout`` seconds per command). What the page reports is collected
    (:attr:`console`: console messages, uncaught exceptions, CSP violations and other log entries;
    :attr:`dialogs`: the messages of JavaScript dialogs, each dismissed at once so it cannot block
    the page) and named in any error, with the page's URL and title and the file being printed.
    """

    def __init__(self, executable: str | None = None, timeout: float = DEVTOOLS_TIMEOUT):
        self.executable = executable or find_chromium()
        self.timeout = timeout
        self._id = 0
        self._buf = b""
        self.proc = None
        self.session = None
        self.target = None
        self.file: Path | None = None
        self.console: list[str] = []
        self.dialogs: list[str] = []

    def __enter__(self) -> "HeadlessChromium":
        import fcntl

        def high(fd: int) -> int:  # move a pipe end above 3/4 so the child can dup2 onto them safely
            new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            return new

        cmd_r, self._cmd_w = map(high, os.pipe())
        self._res_r, res_w = map(high, os.pipe())

        def child_fds() -> None:
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)
            die_with_parent()

        self._profile = tempfile.TemporaryDirectory(prefix="study-chromium-")
        args = [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--mute-audio", "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}", "about:blank"]
        try:
            self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=child_fds,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env={**os.environ, "HOME": self._profile.name})
        except OSError as exc:
            self._close_fds(cmd_r, res_w)
            self._profile.cleanup()
            raise ReportError(f"cannot run Chromium ({self.executable}): {exc}") from None
        self._close_fds(cmd_r, res_w)
        try:
            self.target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @staticmethod
    def _close_fds(*fds: int) -> None:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self._send("Browser.close", {})
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close_fds(self._cmd_w, self._res_r)
        self._profile.cleanup()

    def _send(self, method: str, params: dict, session: bool = False) -> int:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode("utf-8") + b"\0"
        try:
            while data:
                data = data[os.write(self._cmd_w, data):]
        except (BrokenPipeError, OSError) as exc:
            raise ReportError(f"Chromium exited unexpectedly (exit {self.proc.poll()}; {exc})"
                              + self._context(live=False)) from None
        return self._id

    def _recv(self, deadline: float, waiting_for: str) -> dict:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReportError(f"Chromium did not answer {waiting_for} within {self.timeout:g} s" + self._context())
            ready, _, _ = select.select([self._res_r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise ReportError(f"Chromium exited unexpectedly (exit {self.proc.poll()}) while waiting for {waiting_for}"
                                  + self._context(live=False))
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _event(self, msg: dict) -> None:
        """Record what the page reports; dismiss a JavaScript dialog at once (it would block the page)."""
        method, params = msg.get("method"), msg.get("params") or {}
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(f"{params.get('type', 'dialog')}: {str(params.get('message', ''))[:200]}")
            self._send("Page.handleJavaScriptDialog", {"accept": False}, session=True)
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"console.{params.get('type', 'log')}: {text[:300]}")
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails") or {}
            desc = (d.get("exception") or {}).get("description") or d.get("text", "")
            self.console.append(f"uncaught exception: {str(desc)[:300]}")
        elif method == "Log.entryAdded":
            e = params.get("entry") or {}
            self.console.append(f"{e.get('level', 'log')} ({e.get('source', '')}): {str(e.get('text', ''))[:300]}"
                                + (f" [{e['url'][:100]}]" if e.get("url") else ""))

    def _context(self, live: bool = True) -> str:
        """What to add to an error: the file, the page's URL and title, what the page reported."""
        lines = []
        if self.file is not None:
            lines.append(f"file: {self.file}")
        if live and self.target is not None and self.proc is not None and self.proc.poll() is None:
            try:  # a short, separate wait: the browser may be the thing that hangs
                mid = self._send("Target.getTargetInfo", {"targetId": self.target})
                deadline = time.monotonic() + 5
                import select

                while time.monotonic() < deadline:
                    while b"\0" in self._buf:
                        raw, self._buf = self._buf.split(b"\0", 1)
                        msg = json.loads(raw)
                        if msg.get("id") == mid:
                            info = (msg.get("result") or {}).get("targetInfo") or {}
                            lines.append(f"page: {info.get('url', '?')[:200]} (title {info.get('title', '')[:120]!r})")
                            deadline = 0
                            break
                        self._event(msg)
                    if deadline == 0:
                        break
                    ready, _, _ = select.select([self._res_r], [], [], max(0.0, deadline - time.monotonic()))
                    if ready:
                        chunk = os.read(self._res_r, 1 << 20)
                        if not chunk:
                            break
                        self._buf += chunk
            except (ReportError, OSError, ValueError):
                pass
        if self.dialogs:
            lines.append("JavaScript dialogs opened by the page: " + "; ".join(self.dialogs[:5]))
        errors = [c for c in self.console if not c.startswith(("console.log", "console.info", "console.debug", "verbose"))]
        if errors:
            lines.append("the page reported: " + " | ".join(errors[-8:]))
        return "".join(f"\n  {ln}" for ln in lines)

    def call(self, method: str, params: dict | None = None, session: bool = False, event: str | None = None) -> dict:
        """Send a command and return its result (after the event ``event``, if given, has arrived).

        Waits at most ``timeout`` seconds; events that arrive meanwhile are recorded (see :meth:`_event`).
        """
        deadline = time.monotonic() + self.timeout
        mid = self._send(method, params or {}, session)
        waiting_for = method + (f" (then {event})" if event else "")
        result, seen = None, event is None
        while result is None or not seen:
            msg = self._recv(deadline, waiting_for)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise ReportError(f"Chromium: {method} failed: {msg['error'].get('message', msg['error'])}"
                                      + self._context())
                result = msg.get("result", {})
            elif "method" in msg:
                self._event(msg)
                if event is not None and msg.get("method") == event:
                    seen = True
        return result

    def load(self, html_path: Path) -> None:
        """Open the file and wait for its load event; refuse a page that opened a JavaScript dialog."""
        self.file = Path(html_path).resolve()
        res = self.call("Page.navigate", {"url": self.file.as_uri()}, session=True, event="Page.loadEventFired")
        if res.get("errorText"):
            raise ReportError(f"Chromium could not open the page: {res['errorText']}" + self._context())
        if self.dialogs:
            raise ReportError("the report page ran script (it opened a JavaScript dialog); report.html must hold none"
                              + self._context())

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page (over DevTools, not as part of it); return its value."""
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in res:
            raise ReportError(f"Chromium: script failed: {res['exceptionDetails'].get('text', '')}" + self._context())
        return (res.get("result") or {}).get("value")

    def print_pdf(self, pdf_path: Path) -> None:
        res = self.call("Page.printToPDF", dict(PDF_OPTIONS), session=True)
        Path(pdf_path).write_bytes(base64.b64decode(res["data"]))
        pdftext.repair(pdf_path)   # the characters, not CJK radicals, in the text layer


def pdf_pages_text(pdf_path: Path) -> list[str]:
    """Text of each page, read with pypdf from the PDF's own text layer (repaired by
    :func:`study.report.pdftext.repair` after printing, so 客户 reads 客户, not 客⼾).

    The order of words inside a table may differ from the page's visual order; the contents'
    fallback and the tests look for phrases, not layout.
    """
    import pypdf

    try:
        return pdftext.pages_text(pdf_path)
    except (pypdf.errors.PyPdfError, OSError, ValueError, KeyError) as exc:
        raise ReportError(f"cannot read the text of {Path(pdf_path).name}: {exc}") from None


def _norm(text: str) -> str:
    # dashes folded: a font may map the en dash's glyph to the figure dash (pypdf reads U+2012 for "–")
    return re.sub(r"[\u2010-\u2015\u2212]", "-", re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))).lower()


def locate_pages(entries: list[dict], pages: list[str]) -> dict[str, int]:
    """Page (1-based) of each contents entry: the first page after the front matter holding its text.

    The front matter ends on the page where the last entry's text first occurs (it is listed
    there); chapters start on a new page after it.
    """
    normed = [_norm(p) for p in pages]
    if not entries:
        return {}
    probe = lambda e: _norm(e["text"])[:60]  # noqa: E731
    last = probe(entries[-1])
    front_end = next((i for i, p in enumerate(normed) if last and last in p), 0)
    found = {}
    for e in entries:
        key = probe(e)
        if not key:
            continue
        page = next((i for i in range(front_end + 1, len(normed)) if key in normed[i]), None)
        if page is not None:
            found[e["key"]] = page + 1
    return found


def _contents_pages(pdf_path: Path, entries: list[dict]) -> tuple[dict[str, int], list[str]]:
    dests = pdf_destinations(pdf_path)
    found = {e["key"]: dests[e["anchor"]] for e in entries if e["anchor"] in dests}
    if len(found) < len(entries):  # a Chromium without named destinations: find the text
        found = {**locate_pages(entries, pdf_pages_text(pdf_path)), **found}
    missing = [e["text"] for e in entries if e["key"] not in found]
    notes = [f"contents: no page found for {len(missing)} entr(y/ies), e.g. {missing[0]!r}"] if missing else []
    return found, notes


def _print_with_contents(html_path: Path, pdf_path: Path, ctx: dict, chromium: str | None) -> list[str]:
    """Print, read the page of every contents entry, fill the numbers in (HTML file and page), print again."""
    entries = ctx["toc"] + ctx["tables"] + ctx["figures"]
    notes: list[str] = []

    def fill(found: dict[str, int]) -> None:
        for e in entries:
            e["page"] = found.get(e["key"], "")
        html_path.write_text(_render_page(ctx), encoding="utf-8")

    if os.name == "posix":
        with HeadlessChromium(chromium) as browser:
            browser.load(html_path)
            # a table too wide for the A4 text width goes on a landscape page (else Chromium shrinks every page)
            found = layout.measure(browser)
            wide, tall = layout.too_wide(found), layout.too_tall(found)
            if wide or tall:   # and a table taller than half a page may break inside its rows (else it left a gap)
                ctx["landscape"], ctx["tall"] = wide, tall
                html_path.write_text(_render_page(ctx), encoding="utf-8")
                browser.load(html_path)
            browser.print_pdf(pdf_path)
            if entries:
                found, notes = _contents_pages(pdf_path, entries)
                fill(found)
                browser.evaluate("(function(p){document.querySelectorAll('.toc-page[data-toc]').forEach("
                                 "function(e){e.textContent = p[e.dataset.toc] || '';});})("
                                 + json.dumps({k: str(v) for k, v in found.items()}) + ")")
                browser.print_pdf(pdf_path)
            # tables wider than the page, headers set one character per line, chapters opening on a near-empty page
            notes += [n.replace("layout:", f"layout ({ctx.get('lang', 'en')}):", 1)
                      for n in layout.check(browser, pdf_path, pdf_destinations)]
        return notes
    print_pdf(html_path, pdf_path, chromium=chromium)
    if entries:
        found, notes = _contents_pages(pdf_path, entries)
        fill(found)
        print_pdf(html_path, pdf_path, chromium=chromium)
    return notes


def pdf_destinations(pdf_path: Path) -> dict[str, int]:
    """Named destinations of the PDF -> page (1-based), read with pypdf.

    Chromium writes a named destination for every element id that an internal link points at,
    so the contents' anchors (chapters, sections, tables, figures) map to their exact pages.
    An unreadable PDF gives no destinations (the contents then fall back to the pages' text).
    """
    import pypdf

    try:
        reader = pypdf.PdfReader(pdf_path)
        page_of = {page.indirect_reference.idnum: i + 1 for i, page in enumerate(reader.pages)}
        out = {}
        for name, dest in reader.named_destinations.items():
            # names of the /Dests dictionary come as PDF names ("/chapter-1"), those of a name tree as strings
            key = name[1:] if isinstance(name, pypdf.generic.NameObject) or name.startswith("/") else name
            page = page_of.get(getattr(dest.page, "idnum", None))
            if page is not None:
                out.setdefault(str(key), page)
        return out
    except (pypdf.errors.PyPdfError, OSError, ValueError, KeyError, AttributeError):
        return {}


def pdf_page_count(pdf_path: Path) -> int | None:
    import pypdf

    try:
        return len(pypdf.PdfReader(pdf_path).pages)
    except (pypdf.errors.PyPdfError, OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Provenance


def _git_commit() -> str:
    root = config.PROJECT_ROOT
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        commit = head.stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return commit + (" (with uncommitted changes)" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(study_file: Path | str, data_dir: Path | str, quarters: Sequence[str],
               parameters: Mapping[str, Any] | None = None) -> "pd.DataFrame":
    """What the report was computed from, for the provenance appendix.

    Returns a tidy DataFrame (``section``, ``item``, ``value``): the study definition's sha256,
    the sha256 of every raw input and processed output of each quarter (from
    ``data/processed/<Q>/manifest.json``, written by ``prepare``), whether study.yml changed
    since the data were prepared, the parameters, package versions, the git commit and the date.
    ``df.set_index(["section", "item"])["value"].to_dict()`` gives a dict.
    """
    import pandas as pd

    from study.data.config import file_sha256
    from study.i18n import NP_, pgettext, tr

    def sec(name: str) -> str:
        return tr(name, "provenance")

    _sections = [NP_("provenance", "Study definition"), NP_("provenance", "Input data"),
                 NP_("provenance", "Processed data"), NP_("provenance", "Parameters"), NP_("provenance", "Software"),
                 NP_("provenance", "Run")]
    rows: list[tuple[str, str, str]] = []
    study_file = Path(study_file)
    study_sha = file_sha256(study_file)
    rows.append((sec("Study definition"), study_file.name, study_sha))
    for q in quarters:
        mpath = Path(data_dir) / "processed" / q / "manifest.json"
        if not mpath.is_file():
            raise ReportError(f"{mpath}: no manifest for quarter {q}; run `python -m study prepare --quarter {q}` first")
        man = json.loads(mpath.read_text(encoding="utf-8"))
        for dataset, info in (man.get("inputs") or {}).items():
            rows.append((sec("Input data"), f"{q} {dataset}: {info.get('file', '')}", info.get("sha256", "")))
        for dataset, info in (man.get("outputs") or {}).items():
            rows.append((sec("Processed data"), f"{q} {dataset}: {info.get('file', '')}", info.get("sha256", "")))
        same = man.get("study_sha256") == study_sha
        rows.append((sec("Study definition"), pgettext("provenance", "as used to prepare {}").format(q),
                     pgettext("provenance", "same as above") if same else
                     pgettext("provenance", "different ({}…): re-run prepare").format(man.get('study_sha256', 'unknown')[:12])))
    for k, v in (parameters or {}).items():
        rows.append((sec("Parameters"), str(k), str(v)))
    try:
        from study.data.validate import package_versions

        versions = package_versions()
    except Exception:  # pragma: no cover
        versions = {"python": sys.version.split()[0]}
    for k in ("nbclient", "jupyter_client", "ipykernel"):
        try:
            from importlib import metadata

            versions.setdefault(k, metadata.version(k))
        except Exception:
            pass
    for k, v in versions.items():
        rows.append((sec("Software"), k, str(v)))
    commit = _git_commit().replace(" (with uncommitted changes)", pgettext("provenance", " (with uncommitted changes)"))
    rows.append((sec("Software"), "git commit", commit))
    rows.append((sec("Run"), pgettext("provenance", "date"), dt.datetime.now().astimezone().isoformat(timespec="seconds")))
    return pd.DataFrame(rows, columns=["section", "item", "value"])


# ---------------------------------------------------------------------------------------------
# The whole report


def _chapter_number(declared: Mapping[str, Any], position: int) -> str:
    v = declared.get("chapter")
    return str(v) if v not in (None, "") else str(position)


def _order_key(ch: Chapter) -> tuple:
    return (1, ch.number) if ch.appendix else (0, _natural_key(ch.number))


def _execute_job(path: Path, output: Path, params: dict, kernel: str, timeout, failed_dir: Path,
                 kernel_log: Path, threads: int | None = None, warm: WarmKernel | None = None) -> float:
    """One notebook (in a worker process when running in parallel: in the worker's warm kernel, if
    it has one); returns the seconds it took."""
    t = time.perf_counter()
    execute_notebook(path, output, params, kernel=kernel, timeout=timeout, cwd=path.parent,
                     failed_dir=failed_dir, kernel_log=kernel_log, threads=threads, warm=warm or _WORKER_KERNEL)
    return time.perf_counter() - t


def _execute_all(paths: list[Path], nb_dir: Path, params: dict, *, kernel: str, timeout, failed_dir: Path,
                 logs: Path, jobs: int, say: Callable[[str], None], warm: bool = True,
                 done: Callable[[str], None] = lambda name: None) -> dict[str, float]:
    """Execute the notebooks, ``jobs`` at a time (worker processes: papermill changes the working
    directory, so it cannot run in threads). The first failure in notebook order is raised.
    ``warm``: each worker runs its notebooks in one :class:`WarmKernel` (else a kernel each)."""
    # kernels running side by side share the cores: BLAS/OpenMP threads per kernel = cores / jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 and len(paths) > 1 else None
    args = {p: (p, nb_dir / p.name, params, kernel, timeout, failed_dir, logs / f"{p.stem}.kernel.log", threads) for p in paths}
    timings: dict[str, float] = {}
    if jobs <= 1 or len(paths) == 1:
        one = WarmKernel(kernel, logs / "kernel.log", threads) if warm and len(paths) > 1 else None
        try:
            for i, p in enumerate(paths, start=1):
                say(f"running {p.name} ({i}/{len(paths)})")
                timings[f"execute {p.name}"] = _execute_job(*args[p], warm=one)
                done(p.name)
        finally:
            if one is not None:
                one.close()
        return timings
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    say(f"running {len(paths)} notebooks, {jobs} at a time")
    # fork on Linux: workers start at once and never re-import the caller's __main__ (a script
    # without an `if __name__ == "__main__"` guard would otherwise run again in every worker).
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    # workers (and through them their kernels) die with this process, even on kill -9
    ex = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method),
                             initializer=_worker_init, initargs=(os.getpid(), (kernel, str(logs), threads) if warm else None))
    try:
        futures = {p: ex.submit(_execute_job, *args[p]) for p in paths}
        for future in as_completed(futures.values()):  # the bar moves as notebooks finish
            if future.exception() is not None:
                break
            done(next(p.name for p, f in futures.items() if f is future))
        for i, p in enumerate(paths, start=1):  # the first failure in notebook order is raised
            timings[f"execute {p.name}"] = futures[p].result()
            say(f"ran {p.name} ({i}/{len(paths)})")
    except BaseException:
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
    return timings


def _process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from /proc); "" if unknown, gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return ""
    return "" if fields[0] in ("Z", "X") else fields[19]


def _owner_tag() -> str:
    """``<pid>-<start>`` of this process: names its temporary folders, so a later run can tell
    whether their owner still runs (the start time guards against a reused pid)."""
    return f"{os.getpid()}-{_process_start(os.getpid()) or 0}"


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    if Path("/proc/self/stat").exists():  # Linux: a zombie is dead; a different start time is another process
        now = _process_start(pid)
        return bool(now) and (start in ("", "0") or now == start)
    return True


_TEMP_NAME = re.compile(r"^\.(?P<quarter>.+?)\.(?:tmp|old)-(?P<pid>\d+)-(?P<start>\d+)-")
_LEGACY_TEMP = re.compile(r"^\..+\.tmp-[A-Za-z0-9_]{8}$")  # mkdtemp names of earlier versions: no owner
LEGACY_TEMP_AGE = 24 * 3600  # seconds


def clean_stale_temporaries(out_dir: Path) -> list[str]:
    """Remove the temporary folders (``.<Q>.tmp-*``, ``.<Q>.old-*``) that killed renders left in ``out_dir``.

    A folder is removed only when the render that made it is gone (its pid and start time are in
    the name), so a render of another quarter running at the same time keeps its folder. Folders
    named by earlier versions (no owner in the name) go when untouched for 24 hours. Returns the
    names removed.
    """
    removed = []
    if not out_dir.is_dir():
        return removed
    for d in out_dir.iterdir():
        if not d.name.startswith(".") or not d.is_dir() or d.is_symlink():
            continue
        m = _TEMP_NAME.match(d.name)
        if m:
            stale = not _alive(int(m.group("pid")), m.group("start"))
        elif _LEGACY_TEMP.match(d.name):
            try:
                newest = max([d.stat().st_mtime] + [c.stat().st_mtime for c in d.iterdir()])
            except OSError:
                continue
            stale = time.time() - newest > LEGACY_TEMP_AGE
        else:
            continue
        if stale:
            shutil.rmtree(d, ignore_errors=True)
            if not d.exists():
                removed.append(d.name)
    return removed


def _swap(tmp: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{_owner_tag()}-{int(time.time() * 1000)}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def render_report(quarter: str, baseline: str, study_file: Path | str = config.DEFAULT_STUDY_FILE,
                  data_dir: Path | str = config.DEFAULT_DATA_DIR, out_dir: Path | str = config.REPORTS_DIR,
                  notebooks: Sequence[str | Path] | None = NOTEBOOKS, timeout: float | None = DEFAULT_TIMEOUT, *,
                  notebooks_dir: Path | str = config.NOTEBOOKS_DIR, seed: int | None = None,
                  parameters: Mapping[str, Any] | None = None, kernel: str | None = None, pdf: bool = True,
                  title: str | None = None, progress: Callable[[str], None] | None = None,
                  jobs: int | None = None, langs: Sequence[str] = ("en",), store: Path | str | None = None) -> RenderResult:
    """Execute the chapter notebooks and render ``out_dir/<quarter>/report.html`` and ``report.pdf``.

    Parameters
    ----------
    quarter, baseline
        Quarters such as "2025Q2" and "2025Q1" (injected into every notebook).
    study_file, data_dir
        Study definition and data folder (injected as absolute paths).
    out_dir
        Folder holding one sub-folder per quarter (default ``reports/``).
    notebooks
        Notebook file names (in ``notebooks_dir``) or paths, in execution order; None = all.
    timeout
        Seconds a single cell may run (None: no limit).
    seed, parameters
        Injected too (only into notebooks whose parameters cell declares them).
    kernel
        Jupyter kernel name; default: the project kernel if installed, else ``python3``.
    pdf
        Print the PDF (needs Chromium and poppler-utils).
    jobs
        Notebooks executed at the same time, each in its own kernel (default: $STUDY_REPORT_JOBS,
        else 2 when the machine has 2 or more cores). Results do not depend on it.
    langs
        Languages to render (``en``, ``zh``): ``report.html``/``report.pdf`` for English,
        ``report.zh.html``/``report.zh.pdf`` for Chinese. The notebooks run once per language, all
        from the same run cache, so the statistics are computed once (by the first language) and
        the second language costs the formatting and printing. Rendering only Chinese keeps the
        English files already in the folder.
    store
        Folder of the run's results store (:mod:`study.report.store`), passed to the notebooks as their
        ``store`` parameter (every language of the run reads it). Default: a store private to this
        call, deleted at its end. Give the same folder to a later call with the same inputs and it
        reuses every analysis; the caller deletes it.

    Raises
    ------
    StudyError
        (:class:`NotebookFailed`, :class:`ReportError`) naming the notebook, cell and error; the
        previous report of the quarter is left as it was.
    """
    import nbformat

    from study import i18n
    from study.progress import bar

    langs = list(dict.fromkeys(i18n.check_language(x) for x in langs)) or ["en"]
    steps = bar(desc=f"report {quarter}", unit="step")  # a bar on a terminal only (study.progress)

    def say(message: str) -> None:
        steps.set_postfix_str(message)
        if progress is not None:
            progress(message)
    config.quarter_bounds(quarter)  # validates the form
    if baseline:
        config.quarter_bounds(baseline)
        if baseline >= quarter:
            raise ReportError(f"the baseline {baseline} must be a quarter before {quarter}")
    study_file = Path(study_file).resolve()
    data_dir = Path(data_dir).resolve()
    out_dir = Path(out_dir).resolve()
    study = config.load_study(study_file)
    paths = discover_notebooks(notebooks_dir, notebooks)
    chromium = find_chromium() if pdf else None
    kernel = kernel or kernel_name()
    if jobs is None:
        env_jobs = os.environ.get("STUDY_REPORT_JOBS", "")
        jobs = int(env_jobs) if env_jobs.isdigit() else min(2, os.cpu_count() or 1)
    jobs = max(1, int(jobs))
    params: dict[str, Any] = {"quarter": quarter, "baseline": baseline, "study_file": str(study_file),
                              "data_dir": str(data_dir)}
    if seed is not None:
        params["seed"] = int(seed)
    params.update(parameters or {})

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / quarter
    failed_dir = out_dir / f"{quarter}.failed"
    notes: list[str] = []
    stale = clean_stale_temporaries(out_dir)
    if stale:
        notes.append(f"removed {len(stale)} temporary folder(s) left by killed renders: {', '.join(stale)}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{quarter}.tmp-{_owner_tag()}-", dir=out_dir))
    timings: dict[str, float] = {}
    try:
        nb_dirs = {lang: tmp / ("notebooks" if lang == "en" else f"notebooks.{lang}") for lang in langs}
        for d in nb_dirs.values():
            d.mkdir()
        logs = tmp / ".kernel-logs"
        logs.mkdir()
        numbers_of = {path: _chapter_number(notebook_parameters(path), pos) for pos, path in enumerate(paths, start=1)}
        # The chapters (of every language) share each analysis through the run's results store
        # (study.report.store), passed to every notebook that declares a `store` parameter; a store of this
        # run alone is deleted with it, one given by the caller is kept.
        run_store = Path(store).resolve() if store is not None else tmp / ".store"
        run_store.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            steps.reset(total=len(langs) * (len(paths) + 1 + bool(pdf)))
            for lang in langs:
                t_lang = time.perf_counter()
                lang_params = {**params, "lang": lang, "store": str(run_store)}
                lang_timings = _execute_all(paths, nb_dirs[lang], lang_params, kernel=kernel, timeout=timeout,
                                            failed_dir=failed_dir, logs=logs, jobs=jobs, say=say,
                                            done=lambda name: (steps.update(), steps.set_postfix_str(f"ran {name}")))
                suffix = "" if lang == langs[0] else f" [{lang}]"
                timings.update({k + suffix: v for k, v in lang_timings.items()})
                timings[f"execute (all notebooks, {lang})"] = time.perf_counter() - t_lang
        finally:
            if store is None:
                shutil.rmtree(run_store, ignore_errors=True)
        timings["execute (all notebooks)"] = time.perf_counter() - t0
        # no absolute path of the machine in what the render leaves (study.report.paths)
        shown = report_paths.shown_paths(tmp, final, [study_file, data_dir, run_store, *{p.parent for p in paths}])
        for d in nb_dirs.values():
            report_paths.scrub_notebooks(d, shown)
        files: dict[str, tuple[Path, Path | None]] = {}
        pages = None
        for lang in langs:
            suffix = "" if lang == langs[0] else f" [{lang}]"
            t2 = time.perf_counter()
            chapters: list[Chapter] = []
            exporter = _exporter()
            for path in paths:
                nb = nbformat.read(nb_dirs[lang] / path.name, as_version=4)
                notes += check_outputs(nb, path.name)
                remove_tagged_cells(nb)
                ch = Chapter(notebook=path.name, number=numbers_of[path], items=_study_items(nb))
                ch.body = notebook_fragment(nb, path.name, exporter)
                chapters.append(ch)
                missing = sorted({i["msgid"] for i in ch.items if i.get("kind") == "i18n-missing"})
                if missing:
                    notes.append(f"{lang}: {len(missing)} text(s) without a translation in {path.name}, shown in English: "
                                 + "; ".join(repr(m[:60]) for m in missing[:3]))
            t_export = time.perf_counter() - t2
            numbers = [c.number for c in chapters]
            dupes = sorted({n for n in numbers if numbers.count(n) > 1})
            if dupes:
                raise ReportError(f"two notebooks declare the same chapter number {', '.join(dupes)}: "
                                  + ", ".join(c.notebook for c in chapters if c.number in dupes))
            chapters.sort(key=_order_key)

            html_name, pdf_name = report_name(lang, "html"), report_name(lang, "pdf")
            say(f"assembling {html_name}")
            t3 = time.perf_counter()
            if lang == "en":
                page, ctx = assemble_html(chapters, quarter=quarter, baseline=baseline, title=title or study.name,
                                          title_zh=study.name_zh, organisation=study.organisation, study_name="")
            else:
                page, ctx = assemble_html(chapters, quarter=quarter, baseline=baseline,
                                          title=title or study.name_zh or study.name,
                                          title_zh=study.name if study.name_zh else "",
                                          organisation=getattr(study, "organisation_zh", "") or study.organisation,
                                          study_name="", lang=lang)
            assert_self_contained(page)
            html_path = tmp / html_name
            html_path.write_text(page, encoding="utf-8")
            timings["html" + suffix] = t_export + time.perf_counter() - t3
            steps.update()

            pdf_path = None
            if pdf:
                say(f"printing {pdf_name}")
                t4 = time.perf_counter()
                pdf_path = tmp / pdf_name
                notes += _print_with_contents(html_path, pdf_path, ctx, chromium)
                if pages is None:
                    pages = pdf_page_count(pdf_path)
                timings["pdf" + suffix] = time.perf_counter() - t4
                steps.update()
            files[lang] = (html_path, pdf_path)
        if "en" not in langs and final.is_dir():  # a Chinese-only render keeps the English report already there
            for name in ("report.html", "report.pdf", "notebooks"):
                if (final / name).exists() and not (tmp / name).exists():
                    (shutil.copytree if (final / name).is_dir() else shutil.copy2)(final / name, tmp / name)

        shutil.rmtree(logs, ignore_errors=True)
        (tmp / "render.json").write_text(json.dumps({
            "quarter": quarter, "baseline": baseline, "kernel": kernel, "parameters": report_paths.relative(params, shown),
            "notebooks": [p.name for p in paths], "chapters": [c.number for c in chapters], "languages": langs,
            "jobs": jobs, "timings_seconds": {k: round(v, 3) for k, v in timings.items()}, "pages": pages, "notes": notes,
        }, indent=2, ensure_ascii=False), encoding="utf-8")
        _swap(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        steps.close()
    shutil.rmtree(failed_dir, ignore_errors=True)
    first = langs[0]
    return RenderResult(quarter, baseline, final, final / report_name(first, "html"),
                        final / report_name(first, "pdf") if pdf else None,
                        [final / nb_dirs[first].name / p.name for p in paths], timings, pages, notes,
                        files={lang: (final / report_name(lang, "html"), final / report_name(lang, "pdf") if pdf else None)
                               for lang in langs})


def main(args) -> int:
    """``python -m study report --quarter Q --baseline B [--data-dir D] [--study F] [--lang en,zh]``.

    A progress bar (notebooks, HTML, PDF) is drawn on stderr when it is a terminal."""
    res = render_report(args.quarter, args.baseline, study_file=args.study, data_dir=args.data_dir,
                        out_dir=getattr(args, "out_dir", None) or config.REPORTS_DIR,
                        langs=[x for x in str(getattr(args, "lang", "en") or "en").split(",") if x.strip()])
    t = res.timings
    print(f"report {res.quarter}" + (f" vs {res.baseline}" if res.baseline else " (no baseline)") + f": {len(res.notebooks)} notebook(s) executed in "
          f"{t.get('execute (all notebooks)', 0):.1f} s, HTML {t.get('html', 0):.1f} s, PDF {t.get('pdf', 0):.1f} s")
    print(f"  {res.html} ({res.html.stat().st_size / 1e6:.1f} MB)")
    if res.pdf:
        print(f"  {res.pdf}" + (f" ({res.pages} pages)" if res.pages else ""))
    for html_file, pdf_file in list(res.files.values())[1:]:
        print(f"  {html_file} ({html_file.stat().st_size / 1e6:.1f} MB)")
        if pdf_file:
            print(f"  {pdf_file}")
    for k, v in t.items():
        if k.startswith("execute (all notebooks, ") and len(res.files) > 1:
            print(f"  {k}: {v:.1f} s")
    from study.data.values import escape

    for n in res.notes:
        print(f"  note: {escape(n)}")
    return 0
