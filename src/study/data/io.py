"""Reading raw files and writing outputs.

Readers return every cell as text (``str`` or missing), exactly as it stands in the file, so the
validator can check values and keep rejected rows with their original content. Supported formats:
CSV (optionally gzip-compressed, ``.csv.gz``), Excel ``.xlsx``, Parquet and, for the survey,
SPSS ``.sav``. CSV encodings UTF-8, UTF-8 with BOM and GB18030 (a superset of GBK/GB2312, what
Chinese spreadsheet exports use) are detected.

Reading is bounded (:class:`study.data.config.Limits`): a ``.csv.gz`` is decompressed as a stream and
stopped at a size limit, a spreadsheet is read only within a used range checked first, a Parquet
file's size once read is estimated from its footer before reading. A small hostile file therefore
ends in a :class:`~study.errors.DataFileError`, not in exhausted memory.

Writers are atomic: the output is written to a temporary file in the same folder and renamed over
the target, so a reader never sees a half-written file and a failed run leaves the old one intact.
A prepared quarter is written as one unit (:func:`quarter_folder`) and checked against the
manifest's checksums when loaded (:func:`load_quarter`). CSV written for people to open in a
spreadsheet has formula-like cells neutralised (:func:`neutralise_formulas`).
"""

from __future__ import annotations

import contextlib
import gzip
import io as _io
import json
import os
import re
import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from study.data import values
from study.data.config import DATASETS, LIMIT_ENV, Limits, check_quarter, effective_limits, file_sha256
from study.errors import DataFileError, StudyError

# Suffixes accepted per dataset, in order of preference.
FORMATS = {
    "survey": (".csv", ".csv.gz", ".xlsx", ".parquet", ".sav"),
    "process_times": (".csv", ".csv.gz", ".xlsx", ".parquet"),
    "benchmark": (".csv", ".csv.gz", ".xlsx", ".parquet"),
    "service_requests": (".csv", ".csv.gz", ".xlsx", ".parquet"),
}
# Encodings tried in order. GB18030 decodes almost any byte string that is not UTF-8 (Big5 bytes
# too, as mojibake), so text that is not UTF-8 is decoded as GB18030 only when charset-normalizer
# finds it plausible; Big5 (Traditional Chinese) is decoded as such, anything else is refused.
ENCODINGS = ("utf-8-sig", "gb18030")
_GB = {"gb18030", "gbk", "gb2312"}
_BIG5 = {"big5", "big5hkscs", "cp950"}
# How much of a non-UTF-8 file charset-normalizer looks at (it samples within this).
_DETECT_BYTES = 4 << 20
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
    source_rows: list[int] = field(default_factory=list)  # row of each data row as a spreadsheet shows it (header = 1)
    notes: list[str] = field(default_factory=list)
    raw_header: list[str] | None = None  # column names as written, before the reader renamed duplicates


def find_dataset_file(raw_dir: Path, dataset: str, required: bool = True) -> Path | None:
    """The one file holding ``dataset`` in a quarter's raw folder.

    With ``required=False`` a dataset without a file gives None (a study need not have every
    source); more than one file for a dataset is always an error.
    """
    suffixes = FORMATS[dataset]
    found = [raw_dir / f"{dataset}{s}" for s in suffixes if (raw_dir / f"{dataset}{s}").is_file()]
    if not found:
        if not raw_dir.is_dir():
            raise DataFileError(f"{raw_dir}: folder not found. Put the quarter's raw files in data/raw/<QUARTER>/ (e.g. data/raw/2025Q1/).")
        if not required:
            return None
        raise DataFileError(f"{raw_dir}: no {dataset} file. Expected one of: "
                            + ", ".join(f"{dataset}{s}" for s in suffixes) + ".")
    if len(found) > 1:
        raise DataFileError(f"{raw_dir}: more than one {dataset} file ({', '.join(p.name for p in found)}). Keep exactly one.")
    return found[0]


def decode_text(data: bytes | bytearray, path: Path) -> tuple[str, str]:
    """Decode CSV bytes, returning (text, encoding name).

    UTF-8 (with or without BOM) first; otherwise charset-normalizer judges the bytes: GB18030/GBK
    when it finds them plausible, Big5 (``big5``/``cp950``/``big5hkscs``) when that is what they
    are and GB is not plausible; any other encoding is refused, naming the one detected.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(bytes(data[:_DETECT_BYTES])))
    families = [set(m.could_be_from_charset) | {m.encoding} for m in matches]
    gb = [m for m, f in zip(matches, families) if f & _GB]
    big5 = [m for m, f in zip(matches, families) if f & _BIG5]
    if big5 and (not gb or min(m.chaos for m in big5) < min(m.chaos for m in gb)):
        enc = big5[0].encoding
    elif gb:
        enc = "gb18030"
    else:
        enc = None
    if enc is not None:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            pass
    detected = f"it looks like {matches[0].encoding}" if matches else "no encoding fits it"
    raise DataFileError(f"{path}: the text is neither UTF-8 nor GB18030/GBK nor Big5 ({detected}) and cannot be decoded. "
                        "Re-export the file as CSV UTF-8 (Excel: Save As > CSV UTF-8).")


def read_raw(path: Path, required: list[str] | tuple[str, ...] = (), limits: Limits | None = None) -> RawTable:
    """Read a raw data file as text.

    ``required`` is used to find the header row of spreadsheets that carry title rows above it.
    ``limits`` (default: :func:`study.data.config.effective_limits`) bounds what a file may expand to.
    Raises :class:`DataFileError` naming the file and what to do when it cannot be read, is empty,
    is over a limit or has a column name twice.
    """
    path = Path(path)
    limits = limits or effective_limits()
    name = path.name.lower()
    try:
        if name.endswith(".csv") or name.endswith(".csv.gz"):
            table = _read_csv(path, limits)
        elif name.endswith(".xlsx"):
            table = _read_excel(path, required, limits)
        elif name.endswith(".parquet"):
            table = _read_parquet(path, limits)
        elif name.endswith(".sav"):
            import pyreadstat

            _frame, meta = pyreadstat.read_sav(str(path), metadataonly=True)
            _check_cells(path, meta.number_rows or 0, meta.number_columns or 0, limits, "SPSS file")
            frame, _meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
            table = RawTable(path, _as_text(frame), "sav")
        else:
            raise DataFileError(f"{path}: unsupported file type. Use CSV, Excel (.xlsx), Parquet or (survey) SPSS .sav.")
    except DataFileError:
        raise
    except PermissionError:
        raise DataFileError(f"{path}: permission denied. Make the file readable by this user (e.g. chmod u+r).") from None
    except MemoryError:
        raise DataFileError(f"{path}: not enough memory to read this file. Split it, or check that it is what it claims to be.") from None
    except Exception as exc:  # any library failure on a damaged file becomes a user error
        raise DataFileError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc)[:300]}). "
                            "Check that the file is not damaged and is really of the type its name says.") from None
    if table.frame.shape[1] == 0 or len(table.frame) == 0:
        raise DataFileError(f"{path}: the file has no data rows. Export the data again, with the header row and at least one row.")
    if not table.source_rows:
        offset = table.header_row
        table.source_rows = [offset + 1 + i for i in range(len(table.frame))]
    header = table.raw_header if table.raw_header is not None else [str(c) for c in table.frame.columns]
    # the text rules of study.data.values: a control or direction character refuses the file, invisible ones are removed
    header, notes = values.clean_header(header, path)
    table.notes += notes
    counts = Counter(str(c).strip() for c in header if str(c).strip())  # empty names (trailing commas) are not duplicates
    dupes = sorted(c for c, n in counts.items() if n > 1)
    if dupes:
        raise DataFileError(f"{path}: column name(s) {dupes} appear more than once in the header. Rename or remove the duplicates.")
    table.frame.columns = [values.INVISIBLE.sub("", str(c)).strip() for c in table.frame.columns]
    return table


# A header line longer than this is not a header (real ones are a few hundred bytes).
MAX_HEADER_BYTES = 1 << 20


def _limit_hint(limits: Limits) -> str:
    return (f"the limit is {limits.max_decompressed_bytes:,} bytes (limits.max_decompressed_bytes in study.yml, "
            f"or the environment variable {LIMIT_ENV})")


def _read_bounded(path: Path, limits: Limits) -> bytearray:
    """The bytes of a CSV, decompressing ``.gz`` as a stream and stopping at the size limit.

    A gzip file can expand a thousandfold (4.7 MB of gzip held 1 GB of zeros), so the size is
    checked while decompressing, never after. NUL bytes do not occur in CSV text (UTF-8 or
    GB18030); they mean binary data or UTF-16, and stop the read at once.
    """
    limit = limits.max_decompressed_bytes
    gz = path.name.lower().endswith(".gz")
    if not gz and path.stat().st_size > limit:
        raise DataFileError(f"{path}: is {path.stat().st_size:,} bytes, over the size limit; {_limit_hint(limits)}. "
                            "Split the file by quarter, or raise the limit if the machine has the memory.")
    data = bytearray()
    chunk_size = 1 << 20
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            while True:
                chunk = fh.read(chunk_size)
                if not chunk:
                    break
                if b"\x00" in chunk:
                    raise DataFileError(f"{path}: contains NUL bytes, so it is binary data or UTF-16 text and cannot be decoded as CSV. "
                                        "Re-export the file as CSV UTF-8 (Excel: Save As > CSV UTF-8).")
                data += chunk
                if len(data) > MAX_HEADER_BYTES and data.find(b"\n", 0, MAX_HEADER_BYTES) < 0:
                    raise DataFileError(f"{path}: the first line is longer than {MAX_HEADER_BYTES:,} bytes, so it is not a header "
                                        "row. Check that the file is CSV with one record per line.")
                if len(data) > limit:
                    what = "decompresses to more than" if gz else "is more than"
                    raise DataFileError(f"{path}: {what} {limit:,} bytes; {_limit_hint(limits)}. Reading stopped there. "
                                        "Split the file, or raise the limit if the data are genuine and the machine has the memory.")
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, PermissionError):
            raise
        if gz:
            raise DataFileError(f"{path}: not a valid gzip file ({exc}). Re-compress it or provide the plain .csv.") from None
        raise
    return data


def _read_csv(path: Path, limits: Limits) -> RawTable:
    data = _read_bounded(path, limits)
    if not data or data.isspace():
        raise DataFileError(f"{path}: the file is empty. Export the data again, with the header row and at least one row.")
    text, encoding = decode_text(data, path)
    del data  # the bytes are not needed once decoded; free them before pandas parses
    end = text.find("\n")
    n_columns = (text if end < 0 else text[:end]).count(",") + 1
    if n_columns > limits.max_spreadsheet_columns:
        raise DataFileError(f"{path}: the header has {n_columns:,} columns, more than the limit of "
                            f"{limits.max_spreadsheet_columns:,} (limits.max_spreadsheet_columns in study.yml). "
                            "Check that this is the right file and that its delimiter is a comma.")
    try:
        frame = pd.read_csv(_io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""],
                            skipinitialspace=False)
    except pd.errors.ParserError as exc:
        raise DataFileError(f"{path}: is not well-formed CSV ({exc}). Check quoting and the number of columns per row.") from None
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: the file is empty. Export the data again, with the header row and at least one row.") from None
    header, rows = _csv_layout(text, len(frame))
    table = RawTable(path, _as_text(frame), "csv", encoding=encoding, source_rows=rows, raw_header=header)
    return table


def _csv_layout(text: str, n_records: int) -> tuple[list[str] | None, list[int]]:
    """The header as written (before pandas renames a duplicate ``pro1`` to ``pro1.1``) and the
    spreadsheet row of each data record.

    A spreadsheet shows one row per CSV record: a quoted field spanning several lines stays one
    row, and a blank line is an empty row (which pandas skips). So the row of a record is its
    position among all records, blank ones included, counting the header as row 1. The fast path
    (no quotes, no blank lines) is plain counting; otherwise the text is scanned once with the
    csv module. If the two parsers disagree on the number of records, plain counting is kept.
    """
    import csv

    end = text.find("\n")
    first_line = (text if end < 0 else text[:end]).lstrip("\ufeff")  # not split(): no copy of the rest
    try:
        header = next(csv.reader([first_line]))
    except (csv.Error, StopIteration):
        header = None
    plain = list(range(2, n_records + 2))
    if '"' not in text and not re.search(r"\n[ \t\r]*\n[^\n]", text):
        return header, plain
    rows: list[int] = []
    try:
        reader = csv.reader(_io.StringIO(text))
        for i, record in enumerate(reader, start=1):
            if i == 1:
                header = record
                continue
            if record and any(cell.strip() for cell in record) or (record and len(record) > 1):
                rows.append(i)
    except csv.Error:
        return header, plain
    return header, rows if len(rows) == n_records else plain


def _check_cells(path: Path, rows: int, cols: int, limits: Limits, what: str) -> None:
    if rows > limits.max_spreadsheet_rows or cols > limits.max_spreadsheet_columns or rows * cols > limits.max_spreadsheet_cells:
        raise DataFileError(f"{path}: the {what} spans {rows:,} rows × {cols:,} columns, beyond the limits "
                            f"({limits.max_spreadsheet_rows:,} rows, {limits.max_spreadsheet_columns:,} columns, "
                            f"{limits.max_spreadsheet_cells:,} cells; limits.max_spreadsheet_* in study.yml). "
                            "Delete stray cells far from the data (Excel: select the empty rows/columns beyond the data, "
                            "Delete, save), or export the data as CSV.")


# Excel's own limit on the characters of one cell; in the sheet's XML a character takes at most 4 bytes of UTF-8, or
# 6 as an escape (&quot;), so a longer run of text between two tags is not a cell Excel wrote.
EXCEL_MAX_CELL_CHARS = 32_767
_LONG_TEXT = re.compile(rb"[^<>]{%d,}" % (EXCEL_MAX_CELL_CHARS * 6 + 1))


def _check_xlsx_parts(path: Path, limits: Limits) -> None:
    """Refuse an .xlsx whose parts decompress beyond the limits, before openpyxl expands any of them.

    An .xlsx is a zip archive: a 1.5 MB file can hold a sheet of 1.5 GB (one cell of repeated text), which openpyxl
    parses whole (6 GB of memory, then a MemoryError). The declared uncompressed sizes of all parts (which Python's
    zipfile enforces while reading) are bounded by ``max_decompressed_bytes``, as a .csv.gz is; and the sheets and
    shared strings are streamed once, stopping at the first run of text longer than any cell Excel can hold."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            total = sum(i.file_size for i in infos)
            if total > limits.max_decompressed_bytes:
                raise DataFileError(f"{path}: the workbook's parts decompress to {total:,} bytes, more than the limit of "
                                    f"{limits.max_decompressed_bytes:,} (limits.max_decompressed_bytes in study.yml). "
                                    "Export the data as CSV, or check where the file came from.")
            for info in infos:
                if not (info.filename.startswith("xl/worksheets/") or info.filename == "xl/sharedStrings.xml"):
                    continue
                with z.open(info) as fh:
                    tail = b""
                    while chunk := fh.read(1 << 22):
                        if _LONG_TEXT.search(tail + chunk):
                            raise DataFileError(f"{path}: a cell holds more than {EXCEL_MAX_CELL_CHARS:,} characters, "
                                                "Excel's limit for one cell, so the file was not written by Excel as a "
                                                "table. Export the data again as CSV or from Excel.")
                        cut = max(chunk.rfind(b"<"), chunk.rfind(b">"))
                        tail = (tail + chunk)[-(EXCEL_MAX_CELL_CHARS * 6):] if cut < 0 else chunk[cut + 1:]
    except zipfile.BadZipFile as exc:
        raise DataFileError(f"{path}: not a valid .xlsx workbook ({exc}). Save it again from Excel, or export CSV.") from None


def _read_excel(path: Path, required, limits: Limits) -> RawTable:
    """Read the first sheet as text, bounded by its used range.

    openpyxl in read-only mode streams rows, but pads every row to the sheet's declared width: a
    stray cell at XFD200000 would make 200,000 rows of 16,384 cells (a 5 KB file, a MemoryError).
    So the declared range is checked against the limits before any cell is read; then the
    declaration is ignored (some writers get it wrong) and each row is read only as wide as its
    last cell, with rows, row width and cells counted against the same limits while reading.
    """
    import openpyxl

    _check_xlsx_parts(path, limits)
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        ws = wb.worksheets[0]
        if ws.max_row is not None and ws.max_column is not None:
            _check_cells(path, ws.max_row, ws.max_column, limits, "used range of the first sheet")
        ws.reset_dimensions()
        body: list[tuple[int, list]] = []  # (1-based sheet row, cells) of non-empty rows
        cells = width = 0
        for r, values in enumerate(ws.iter_rows(values_only=True), start=1):
            width = max(width, len(values))
            if r > limits.max_spreadsheet_rows or width > limits.max_spreadsheet_columns:
                _check_cells(path, r, width, limits, "first sheet")
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            cells += len(values)
            if cells > limits.max_spreadsheet_cells:
                _check_cells(path, r, width, limits, "first sheet")
            body.append((r, list(values)))
    finally:
        wb.close()
    if not body:
        raise DataFileError(f"{path}: the first sheet is empty. Put the data on the first sheet, with a header row.")
    _check_cells(path, len(body), width, limits, "first sheet")
    header_idx = 0
    if required:
        need = set(required)
        for i in range(min(HEADER_SEARCH_ROWS, len(body))):
            present = {str(v).strip() for v in body[i][1] if v is not None}
            if need <= present:
                header_idx = i
                break
    rows = body[header_idx + 1:]
    header_cells = body[header_idx][1]
    ncol = max([len(header_cells)] + [len(v) for _, v in rows])
    header = [str(v).strip() if v is not None and str(v).strip() else f"unnamed_{j}"
              for j, v in enumerate(header_cells + [None] * (ncol - len(header_cells)))]
    grid = [vals + [None] * (ncol - len(vals)) for _, vals in rows]
    frame = pd.DataFrame(grid, columns=range(ncol), dtype=object) if grid else pd.DataFrame(columns=range(ncol), dtype=object)
    keep = [j for j, c in enumerate(header) if not c.startswith("unnamed_") or frame[j].notna().any()]
    frame = frame[keep]
    frame.columns = [header[j] for j in keep]
    table = RawTable(path, _as_text(frame), "xlsx", header_row=body[header_idx][0],
                     source_rows=[r for r, _ in rows], raw_header=[header[j] for j in keep])
    if header_idx > 0:
        table.notes.append(f"header found on sheet row {table.header_row}; "
                           f"{table.header_row - 1} title row(s) above it were skipped")
    return table


def _read_parquet(path: Path, limits: Limits) -> RawTable:
    """Read a Parquet file as text, refusing one that would expand beyond the size limit.

    Parquet compresses repeated values to almost nothing (dictionary and run-length encoding), so
    the footer's sizes are not enough: the size once read is estimated as the larger of the
    uncompressed size and 32 bytes per cell (every cell becomes text), checked before reading.
    """
    pf = pq.ParquetFile(path)
    meta = pf.metadata
    size = max(sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)),
               meta.num_rows * meta.num_columns * 32)
    if size > limits.max_decompressed_bytes:
        raise DataFileError(f"{path}: {meta.num_rows:,} rows × {meta.num_columns:,} columns would take about {size:,} bytes "
                            f"once read; {_limit_hint(limits)}. "
                            "Split the file, or raise the limit if the data are genuine and the machine has the memory.")
    names = list(pf.schema_arrow.names)
    if len(set(names)) < len(names):
        dupes = sorted(c for c, n in Counter(names).items() if n > 1)
        raise DataFileError(f"{path}: column name(s) {dupes} appear more than once. Rename or remove the duplicates.")
    # Text columns are read dictionary-encoded, so their size once decoded can be counted before it
    # exists: 400 rows of one 8 MB string are stored once (a 10 KB file) but decode to 3.2 GB.
    text = [f.name for f in pf.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    table = pq.ParquetFile(path, read_dictionary=text).read() if text else pf.read()
    decoded = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.binary_length(chunk.dictionary).take(chunk.indices)
                decoded += int(pc.sum(lengths).as_py() or 0) + 8 * len(chunk)
            else:
                decoded += chunk.nbytes
            if decoded > limits.max_decompressed_bytes:
                raise DataFileError(f"{path}: {meta.num_rows:,} rows × {meta.num_columns:,} columns decode to more than "
                                    f"{limits.max_decompressed_bytes:,} bytes once read; {_limit_hint(limits)}. "
                                    "Reading stopped there. Check that this is the right file, or raise the limit if the data "
                                    "are genuine and the machine has the memory.")
    frame = table.to_pandas()
    del table
    return RawTable(path, _as_text(frame), "parquet", raw_header=names)


def _cell_text(v) -> object:
    """One cell as the text a CSV export would hold (so every format is validated alike)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and pd.isna(v)):
        return pd.NA
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"  # a boolean column (complaint, first_pass) read as 1/0
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return pd.NA
        if float(v).is_integer():
            return str(int(v))  # Excel and SPSS store integers as floats: 5.0 -> "5"
        return str(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    if isinstance(v, (bytes, bytearray)):
        try:
            v = bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(v).hex()
    s = str(v)
    return s if s.strip() != "" else pd.NA


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    cols = {}
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
            values = col.astype("string")  # already text: kept as it is, blank cells become missing
            cols[j] = values.mask(values.str.strip().eq("").fillna(False))
        else:
            cols[j] = pd.array([_cell_text(v) for v in col.tolist()], dtype="string")
    out = pd.DataFrame(cols)
    out.columns = list(frame.columns)
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


# Cells a spreadsheet would read as a formula (OWASP, "CSV injection"): =, +, -, @, tab, CR.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot run as spreadsheet formulas.

    Rejected rows keep the raw values an analyst opens in Excel, and raw values may be hostile
    (``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd|...``). As OWASP recommends, a text cell beginning
    with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading single quote, which
    spreadsheets show as text. Numbers stay numbers: numeric columns are untouched and a text cell
    that is a plain number (``-3.5``, ``+2``) is left as it is. Control, text-direction and invisible
    characters (:mod:`study.data.values`) are written as escapes (``\\x1b``, ``\\u202e``), so the file
    neither reorders in a spreadsheet nor drives a terminal; tab, CR and LF stay.
    """
    out = frame.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            continue
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            continue
        text = col.astype("string")
        # controls, direction and invisible characters shown as escapes (\x1b, \u202e): the file is opened in a
        # spreadsheet or printed on a terminal; tab, CR and LF stay (CSV quoting holds them, the formula rule below sees them)
        cells = text.tolist()
        shown = [values.escape(v, keep="\t\r\n") if isinstance(v, str) else v for v in cells]
        if any(isinstance(a, str) and a != b for a, b in zip(cells, shown)):
            text = pd.Series(pd.array(shown, dtype="string"), index=text.index)
            out[c] = text
        risky = text.str.startswith(FORMULA_PREFIXES).fillna(False) & ~text.str.strip().str.fullmatch(_NUMBER).fillna(False)
        if risky.any():
            out[c] = text.mask(risky, "'" + text)
    # column names come from study.yml and the raw header: the same rules apply to them
    out.columns = [values.escape(str(c)) for c in out.columns]
    out.columns = [("'" + str(c)) if str(c).startswith(FORMULA_PREFIXES) and not _NUMBER.match(str(c).strip()) else c
                   for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, target: Path) -> None:
    """Write CSV (UTF-8 with BOM, so Excel shows Chinese text correctly) atomically, with cells
    that a spreadsheet would run as formulas neutralised (:func:`neutralise_formulas`)."""
    safe = neutralise_formulas(frame)
    with atomic_path(target) as tmp:
        safe.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")


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


def _inside(base: Path, quarter: str) -> Path:
    """``base/quarter``, after checking that ``quarter`` is a quarter name (so the path stays in ``base``).

    The check is on the name and on the lexical path, not on resolved symlinks: a quarter folder
    that the user links to a share on purpose is still read.
    """
    check_quarter(quarter)
    path = Path(base) / quarter
    if os.path.normpath(path).rsplit(os.sep, 1)[0] != os.path.normpath(base):
        raise StudyError(f"quarter '{quarter}' would leave {base}; pass a quarter name such as 2025Q1.")
    return path


def processed_dir(data_dir: Path | str, quarter: str) -> Path:
    return _inside(Path(data_dir) / "processed", quarter)


def raw_dir(data_dir: Path | str, quarter: str) -> Path:
    return _inside(Path(data_dir) / "raw", quarter)


def _rerun(quarter: str) -> str:
    return f"re-run `python -m study prepare --quarter {quarter}` (or `make data`)"


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
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise DataFileError(f"{path}: the manifest is damaged; {_rerun(quarter)}.") from None


def verify_quarter(directory: Path, manifest: dict, quarter: str) -> None:
    """Check every output listed in the manifest's ``checksums`` against its sha256.

    ``prepare`` swaps a quarter in as one folder, so a mismatch means the folder was changed by
    hand or by an older, interrupted toolkit version; the quarter is refused rather than read mixed.
    """
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        raise DataFileError(f"{directory / 'manifest.json'}: has no output checksums (prepared by an older version of the "
                            f"toolkit, or damaged); {_rerun(quarter)}.")
    for name, expected in sorted(checksums.items()):
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise DataFileError(f"{path}: listed in the manifest but missing; the quarter is incomplete. {_rerun(quarter).capitalize()}.")
        if file_sha256(path) != expected:
            raise DataFileError(f"{path}: does not match the checksum in manifest.json (changed after prepare, or written by "
                                f"an interrupted run); {_rerun(quarter)}.")


class _NotRead:
    """Stands for a processed dataset that :func:`load_quarter` found but has not read yet."""

    def __repr__(self) -> str:
        return "<not read yet>"


NOT_READ = _NotRead()


@dataclass
class QuarterData:
    """A prepared quarter: its processed frames (None for a source the quarter did not supply),
    manifest and where the files are.

    A frame is read when first used (:data:`NOT_READ` until then), from bytes checked against
    the manifest's sha256: a chapter that needs only stored results or the manifest reads no
    ticket log, and :meth:`has` answers without reading.
    """

    quarter: str
    survey: pd.DataFrame
    process_times: pd.DataFrame | None
    benchmark: pd.DataFrame | None
    manifest: dict
    directory: Path
    service_requests: pd.DataFrame | None = None

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """The datasets this quarter has, by name (a dataset not supplied is absent)."""
        return {d: f for d, f in (("survey", self.survey), ("process_times", self.process_times),
                                  ("benchmark", self.benchmark), ("service_requests", self.service_requests))
                if f is not None}

    def __getattribute__(self, name: str):
        value = object.__getattribute__(self, name)
        if value is NOT_READ:
            value = _read_verified(self.directory, self.manifest, self.quarter, name)
            object.__setattr__(self, name, value)
        return value

    def has(self, dataset: str) -> bool:
        """Whether this quarter supplied ``dataset`` ('survey', 'process_times', 'benchmark' or 'service_requests')."""
        if dataset not in DATASETS:
            raise KeyError(f"unknown dataset '{dataset}'; expected one of {list(DATASETS)}")
        return object.__getattribute__(self, dataset) is not None

    def columns(self, dataset: str, names: list[str]) -> pd.DataFrame:
        """Some columns of a dataset: from the frame when it was read, else only those columns from
        the file (a ticket log of millions of rows need not be read whole for a count)."""
        frame = object.__getattribute__(self, dataset)
        if frame is None:
            raise DataFileError(f"{self.directory}: quarter {self.quarter} has no {dataset}")
        if frame is not NOT_READ:
            return frame[names]
        data = _verified_bytes(self.directory, self.manifest, self.quarter, dataset)
        return pq.read_table(pa.BufferReader(data), columns=names).to_pandas()

    @property
    def process_times_path(self) -> Path:
        """The processed ticket log (Parquet), for the out-of-core process analyses (not read into pandas)."""
        if not self.has("process_times"):
            raise DataFileError(f"{self.directory}: quarter {self.quarter} has no process times (no process_times file "
                                "was supplied); the process analyses need one. Check `quarter.has('process_times')` first.")
        return self.directory / "process_times.parquet"

    @property
    def service_requests_path(self) -> Path:
        """The processed service-request log (Parquet), for the out-of-core request analyses (not read into pandas)."""
        if not self.has("service_requests"):
            raise DataFileError(f"{self.directory}: quarter {self.quarter} has no service requests (no service_requests "
                                "file was supplied). Check `quarter.has('service_requests')` first.")
        return self.directory / "service_requests.parquet"


def load_quarter(data_dir: Path | str, quarter: str) -> QuarterData:
    """Load the processed datasets and the manifest of a quarter (``make data`` writes them).

    The outputs are checked against the manifest's sha256 first (:func:`verify_quarter`); a
    dataset the quarter did not supply (``manifest["datasets_missing"]``) is None.
    """
    if not quarter:
        raise DataFileError("no quarter given: set the `quarter` parameter (a folder name under data/raw, e.g. 2025Q2)")
    directory = processed_dir(data_dir, quarter)
    manifest = load_manifest(data_dir, quarter)
    verify_quarter(directory, manifest, quarter)
    present = [d for d in DATASETS if d in manifest.get("rows", {})]
    frames = {d: (NOT_READ if d in present else None) for d in DATASETS}
    return QuarterData(quarter=quarter, manifest=manifest, directory=directory, **frames)


def _verified_bytes(directory: Path, manifest: dict, quarter: str, dataset: str) -> bytes:
    """The processed file of ``dataset``, checked against the manifest again (prepare may have
    swapped the quarter in since :func:`load_quarter` verified it)."""
    import hashlib

    name = f"{dataset}.parquet"
    path = directory / name
    if not path.is_file():
        raise DataFileError(f"{path}: processed data not found. Run `python -m study prepare --quarter {quarter}` (or `make data`) first.")
    data = path.read_bytes()
    expected = (manifest.get("checksums") or {}).get(name)
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise DataFileError(f"{path}: does not match the checksum in manifest.json (changed after prepare, or written by "
                            f"an interrupted run); {_rerun(quarter)}.")
    return data


def _read_verified(directory: Path, manifest: dict, quarter: str, dataset: str) -> pd.DataFrame:
    return pq.read_table(pa.BufferReader(_verified_bytes(directory, manifest, quarter, dataset))).to_pandas()


# ---------------------------------------------------------------------------------------------
# Writing a quarter as one unit


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(parent: Path, quarter: str) -> list[Path]:
    """Remove temporary folders of ``quarter`` left by killed runs (their process is gone).

    Names are ``.<QUARTER>.tmp-<pid>-<random>`` (being built) and ``.<QUARTER>.old-<pid>-<random>``
    (being replaced). A folder whose process still runs is left alone, so two runs never remove
    each other's work.
    """
    removed = []
    if not parent.is_dir():
        return removed
    pattern = re.compile(rf"^\.{re.escape(quarter)}\.(tmp|old)-(\d+)-")
    for p in parent.iterdir():
        m = pattern.match(p.name)
        if m and p.is_dir() and (int(m.group(2)) == os.getpid() or not _pid_alive(int(m.group(2)))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def quarter_folder(final: Path, owned: Callable[[str], bool]) -> Iterator[Path]:
    """Build a quarter's output folder in a temporary sibling and swap it in as one unit.

    Yields the temporary folder. On success the previous folder is renamed aside, the new one
    renamed into place and the old one removed; a reader sees the old quarter or the new one,
    never a mix. On failure (or a kill) the previous folder stays as it was, and the temporary
    one is removed now or by the next run (:func:`clean_stale`). Entries of the previous folder
    that this writer does not produce (``owned(name)`` is False, e.g. a large ``process_times/``
    log written by ``sample --tickets``) are moved into the new folder.
    """
    final = Path(final)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent, final.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; give it the permissions a new folder would get
        yield tmp
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-{os.getpid()}-", dir=parent))
            os.rmdir(old)
            os.replace(final, old)
            os.replace(tmp, final)
            for entry in old.iterdir():
                if not owned(entry.name) and not (final / entry.name).exists():
                    os.replace(entry, final / entry.name)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
