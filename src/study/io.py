"""Reading raw files and writing outputs.

Readers return every cell as text (``str`` or missing), exactly as it stands in the file, so the
validator can check values and keep rejected rows with their original content. Supported formats:
CSV (optionally gzip-compressed, ``.csv.gz``), Excel ``.xlsx``, Parquet and, for the survey,
SPSS ``.sav``. CSV encodings UTF-8, UTF-8 with BOM and GB18030 (a superset of GBK/GB2312, what
Chinese spreadsheet exports use) are detected.

Writers are atomic: the output is written to a temporary file in the same folder and renamed over
the target, so a reader never sees a half-written file and a failed run leaves the old one intact.
"""

from __future__ import annotations

import contextlib
import gzip
import io as _io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from study.errors import DataFileError

# Suffixes accepted per dataset, in order of preference.
FORMATS = {
    "survey": (".csv", ".csv.gz", ".xlsx", ".parquet", ".sav"),
    "process_times": (".csv", ".csv.gz", ".xlsx", ".parquet"),
    "benchmark": (".csv", ".csv.gz", ".xlsx", ".parquet"),
}
# Encodings tried in order. GB18030 decodes almost any byte string that is not UTF-8, so it
# comes after the strict UTF-8 check; what fails all three is reported as undecodable.
ENCODINGS = ("utf-8-sig", "gb18030")
# How many leading rows of a spreadsheet are searched for the header row (title rows above it
# are common in exported Excel files).
HEADER_SEARCH_ROWS = 10


@dataclass
class RawTable:
    """A raw file read as text, with what was learned while reading it."""

    path: Path
    frame: pd.DataFrame            # all cells as str, missing as NA; index = 0..n-1
    format: str                    # csv / xlsx / parquet / sav
    encoding: str | None = None    # for CSV
    header_row: int = 1            # 1-based row number of the header in the file
    source_rows: list[int] = field(default_factory=list)  # 1-based file row of each data row
    notes: list[str] = field(default_factory=list)


def find_dataset_file(raw_dir: Path, dataset: str) -> Path:
    """The one file holding ``dataset`` in a quarter's raw folder."""
    suffixes = FORMATS[dataset]
    found = [raw_dir / f"{dataset}{s}" for s in suffixes if (raw_dir / f"{dataset}{s}").is_file()]
    if not found:
        if not raw_dir.is_dir():
            raise DataFileError(f"{raw_dir}: folder not found. Put the quarter's raw files in data/raw/<QUARTER>/ (e.g. data/raw/2025Q1/).")
        raise DataFileError(f"{raw_dir}: no {dataset} file. Expected one of: "
                            + ", ".join(f"{dataset}{s}" for s in suffixes) + ".")
    if len(found) > 1:
        raise DataFileError(f"{raw_dir}: more than one {dataset} file ({', '.join(p.name for p in found)}). Keep exactly one.")
    return found[0]


def decode_text(data: bytes, path: Path) -> tuple[str, str]:
    """Decode CSV bytes, returning (text, encoding name)."""
    for enc in ENCODINGS:
        try:
            return data.decode(enc), ("utf-8-sig" if enc == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf") else
                                      "utf-8" if enc == "utf-8-sig" else enc)
        except UnicodeDecodeError:
            continue
    raise DataFileError(f"{path}: the text is neither UTF-8 nor GB18030/GBK and cannot be decoded. "
                        "Re-export the file as CSV UTF-8 (Excel: Save As > CSV UTF-8).")


def read_raw(path: Path, required: list[str] | tuple[str, ...] = ()) -> RawTable:
    """Read a raw data file as text.

    ``required`` is used to find the header row of spreadsheets that carry title rows above it.
    Raises :class:`DataFileError` naming the file and what to do when it cannot be read or is empty.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".csv") or name.endswith(".csv.gz"):
            table = _read_csv(path)
        elif name.endswith(".xlsx"):
            table = _read_excel(path, required)
        elif name.endswith(".parquet"):
            frame = pq.read_table(path).to_pandas()
            table = RawTable(path, _as_text(frame), "parquet")
        elif name.endswith(".sav"):
            import pyreadstat

            frame, _meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
            table = RawTable(path, _as_text(frame), "sav")
        else:
            raise DataFileError(f"{path}: unsupported file type. Use CSV, Excel (.xlsx), Parquet or (survey) SPSS .sav.")
    except DataFileError:
        raise
    except Exception as exc:  # any library failure on a damaged file becomes a user error
        raise DataFileError(f"{path}: cannot be read ({type(exc).__name__}: {exc}). "
                            "Check that the file is not damaged and is really of the type its name says.") from None
    if table.frame.shape[1] == 0 or len(table.frame) == 0:
        raise DataFileError(f"{path}: the file has no data rows. Export the data again, with the header row and at least one row.")
    if not table.source_rows:
        offset = table.header_row
        table.source_rows = [offset + 1 + i for i in range(len(table.frame))]
    table.frame.columns = [str(c).strip() for c in table.frame.columns]
    dupes = sorted({c for c in table.frame.columns if list(table.frame.columns).count(c) > 1})
    if dupes:
        raise DataFileError(f"{path}: column name(s) {dupes} appear more than once in the header. Rename or remove the duplicates.")
    return table


def _read_csv(path: Path) -> RawTable:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataFileError(f"{path}: not a valid gzip file ({exc}). Re-compress it or provide the plain .csv.") from None
    if not data.strip():
        raise DataFileError(f"{path}: the file is empty. Export the data again, with the header row and at least one row.")
    text, encoding = decode_text(data, path)
    try:
        frame = pd.read_csv(_io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""],
                            skipinitialspace=False)
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: is not well-formed CSV ({exc}). Check quoting and the number of columns per row.") from None
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: the file is empty. Export the data again, with the header row and at least one row.") from None
    return RawTable(path, _as_text(frame), "csv", encoding=encoding)


def _read_excel(path: Path, required) -> RawTable:
    grid = pd.read_excel(path, header=None, dtype=object, engine="openpyxl")
    grid = grid.dropna(how="all").reset_index(drop=False)
    if grid.empty:
        raise DataFileError(f"{path}: the first sheet is empty. Put the data on the first sheet, with a header row.")
    header_idx = 0
    if required:
        need = set(required)
        for i in range(min(HEADER_SEARCH_ROWS, len(grid))):
            cells = {str(v).strip() for v in grid.iloc[i, 1:] if pd.notna(v)}
            if need <= cells:
                header_idx = i
                break
    excel_row = lambda i: int(grid.loc[i, "index"]) + 1  # noqa: E731 (1-based sheet row)
    header = [str(v).strip() if pd.notna(v) else f"unnamed_{j}" for j, v in enumerate(grid.iloc[header_idx, 1:])]
    body = grid.iloc[header_idx + 1:]
    frame = pd.DataFrame(body.iloc[:, 1:].to_numpy(), columns=header)
    frame = frame.loc[:, [not c.startswith("unnamed_") or frame[c].notna().any() for c in frame.columns]]
    table = RawTable(path, _as_text(frame), "xlsx", header_row=excel_row(header_idx),
                     source_rows=[excel_row(i) for i in body.index])
    if header_idx > 0:
        table.notes.append(f"header found on sheet row {table.header_row}; "
                           f"{table.header_row - 1} title row(s) above it were skipped")
    return table


def _cell_text(v) -> object:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA or v is pd.NaT:
        return pd.NA
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # Excel and SPSS store integers as floats: 5.0 -> "5"
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    s = str(v)
    return s if s.strip() != "" else pd.NA


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({c: pd.array([_cell_text(v) for v in frame[c].tolist()], dtype="string") for c in frame.columns})
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Atomic writes


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed over ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes it private; give it the permissions a new file would get
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_parquet(frame: pd.DataFrame, target: Path) -> None:
    """Write a DataFrame as Parquet atomically, deterministically (no index, fixed options)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(None)  # drop pandas metadata (holds library versions)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


def write_csv(frame: pd.DataFrame, target: Path) -> None:
    """Write CSV (UTF-8 with BOM, so Excel shows Chinese text correctly) atomically."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")


def write_json(obj, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def write_bytes(data: bytes, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_with(target: Path, writer: Callable[[Path], None]) -> None:
    """Atomically produce ``target`` with ``writer(tmp_path)``."""
    with atomic_path(target) as tmp:
        writer(tmp)


# ---------------------------------------------------------------------------------------------
# Processed data


def processed_dir(data_dir: Path | str, quarter: str) -> Path:
    return Path(data_dir) / "processed" / quarter


def raw_dir(data_dir: Path | str, quarter: str) -> Path:
    return Path(data_dir) / "raw" / quarter


def load_processed(data_dir: Path | str, quarter: str, dataset: str) -> pd.DataFrame:
    """Read one processed dataset of a quarter (run ``python -m study prepare`` first)."""
    path = processed_dir(data_dir, quarter) / f"{dataset}.parquet"
    if not path.is_file():
        raise DataFileError(f"{path}: processed data not found. Run `python -m study prepare --quarter {quarter}` (or `make data`) first.")
    return pq.read_table(path).to_pandas()


def load_manifest(data_dir: Path | str, quarter: str) -> dict:
    path = processed_dir(data_dir, quarter) / "manifest.json"
    if not path.is_file():
        raise DataFileError(f"{path}: manifest not found. Run `python -m study prepare --quarter {quarter}` (or `make data`) first.")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class QuarterData:
    """A prepared quarter: its processed frames, manifest and where the files are."""

    quarter: str
    survey: pd.DataFrame
    process_times: pd.DataFrame
    benchmark: pd.DataFrame
    manifest: dict
    directory: Path

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        return {"survey": self.survey, "process_times": self.process_times, "benchmark": self.benchmark}

    @property
    def process_times_path(self) -> Path:
        """The processed ticket log (Parquet), for the out-of-core process analyses."""
        return self.directory / "process_times.parquet"


def load_quarter(data_dir: Path | str, quarter: str) -> QuarterData:
    """Load every processed dataset and the manifest of a quarter (``make data`` writes them)."""
    if not quarter:
        raise DataFileError("no quarter given: set the `quarter` parameter (a folder name under data/raw, e.g. 2025Q2)")
    frames = {d: load_processed(data_dir, quarter, d) for d in ("survey", "process_times", "benchmark")}
    return QuarterData(quarter=quarter, manifest=load_manifest(data_dir, quarter),
                       directory=processed_dir(data_dir, quarter), **frames)


# ---------------------------------------------------------------------------------------------
# Result cache shared by the notebooks of one report run

CACHE_ENV = "STUDY_CACHE_DIR"


def cache_dir() -> Path | None:
    """The folder of the current report run's result cache (set by ``study.report``), or None."""
    d = os.environ.get(CACHE_ENV)
    return Path(d) if d else None


def cache_load(key: str):
    """A cached result for ``key`` (a hex digest) from this report run, or None."""
    import pickle

    d = cache_dir()
    path = d / f"{key}.pkl" if d else None
    if path is None or not path.is_file():
        return None
    with open(path, "rb") as fh:
        return pickle.load(fh)


def cache_store(key: str, value) -> None:
    """Keep a result for the other notebooks of this report run (atomic; no-op outside a run)."""
    import pickle

    d = cache_dir()
    if d is None:
        return
    with atomic_path(d / f"{key}.pkl") as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
