"""Reading CSV and Parquet files in chunks into a DatasetProfile.

Files are read in chunks of CHUNK_BYTES (CSV: split at line ends, each chunk parsed by Arrow's
multi-threaded reader while the previous one is profiled; Parquet: record batches), so peak
memory does not grow with the row count.
"""

from __future__ import annotations

import csv
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from step_common import (
    INTEGER_PATTERN,
    MISSING_TOKENS,
    NUMBER_PATTERN,
    InputError,
    is_csv,
    open_bytes,
)

from .common import short, warn
from .profiles import ColumnProfile, DatasetProfile

try:  # in the XGBoost 3.0-5 image; a clear error at run time rather than an import crash
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
except ImportError:
    pa = None

# The missing-value tokens and number syntax are every step's (step_common); Arrow's own float
# parser accepts every NUMBER_PATTERN match.
CHUNK_BYTES = 8 << 20


def data_files(directory: Path, *, allow_empty: bool = False) -> list[Path]:
    if not directory.is_dir():
        if allow_empty:
            return []
        raise InputError(f"{directory}: input directory does not exist; expected CSV files")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and (is_csv(p) or _is_parquet(p)))
    if not files and not allow_empty:
        raise InputError(
            f"{directory}: no .csv, .csv.gz or .parquet files found; expected CSV files with a "
            "header row"
        )
    return files


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def profile_files(directory: Path, files: list[Path]) -> DatasetProfile:
    if pa is None:
        raise InputError(
            "pyarrow is not importable; the SageMaker XGBoost 3.0-5 image ships it (22.0.0)"
        )
    profile = DatasetProfile()
    for path in files:
        relative = path.relative_to(directory).as_posix()
        reader = ParquetChunks(path) if _is_parquet(path) else CsvChunks(path)
        rows = 0
        for table in reader:
            rows += table.num_rows
            for i, name in enumerate(reader.header):
                add_array(profile.column(name), table.column(i), reader, name)
        for name in reader.header:
            profile.column(name).rows += rows
        profile.files.append((relative, reader.header, rows))
    if len({tuple(h) for _, h, _ in profile.files}) > 1:
        # Not fatal: absent columns become missing values, which the checks report.
        warn(f"files under {directory} have different headers; absent columns count as missing")
    return profile


def read_header(path: Path, line: bytes) -> list[str]:
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: header is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        header = next(csv.reader([text]), None)
    except csv.Error as exc:
        raise InputError(f"{path}: header row is not valid CSV ({exc})") from None
    if not header:
        what = "file is empty" if not text else "first line is empty"
        raise InputError(f"{path}: {what}; expected a CSV header row")
    header = [name.strip() for name in header]
    for position, name in enumerate(header, start=1):
        if not name:
            raise InputError(f"{path}: header column {position} has no name")
        if header.index(name) != position - 1:
            raise InputError(f"{path}: column name {name!r} appears twice in the header")
    return header


class CsvChunks:
    """A CSV file as Arrow tables of about CHUNK_BYTES each, split at line ends outside quotes.

    Each chunk is parsed by Arrow (multi-threaded) on a helper thread while the caller profiles
    the previous one; at most two chunks are in memory at any time.
    """

    def __init__(self, path: Path):
        self.path = path
        self.header: list = []
        self.text_columns: set = set()  # read as text: Arrow inferred a non-numeric type

    def _raw_chunks(self):
        """(file offset, bytes, whether quoted) of each chunk of whole rows."""
        try:
            with open_bytes(self.path) as handle:  # .csv.gz decompressed; gzip in .csv refused
                self.header = read_header(self.path, handle.readline())
                offset, rest = handle.tell(), b""
                while True:
                    data = handle.read(CHUNK_BYTES)
                    buffer = rest + data
                    quoted = b'"' in buffer
                    if not data:
                        if buffer.strip():
                            yield offset, buffer, quoted
                        return
                    cut = _row_boundary(buffer, quoted)
                    rest = buffer[cut:]
                    if cut:  # a memoryview: Arrow reads the rows in place, without a copy
                        yield offset, memoryview(buffer)[:cut], quoted
                    offset += cut
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .csv.gz
            if not self.path.name.lower().endswith(".gz"):
                raise
            raise InputError(f"{self.path}: not a readable gzip file ({exc})") from None

    def _parse(self, offset: int, buffer, quoted: bool, text_columns: frozenset):
        try:
            return pa_csv.read_csv(
                pa.py_buffer(buffer),
                read_options=pa_csv.ReadOptions(column_names=self.header),
                # Slower, so only when a quoted value may hold a line end.
                parse_options=pa_csv.ParseOptions(newlines_in_values=quoted),
                convert_options=pa_csv.ConvertOptions(
                    null_values=MISSING_TOKENS,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                    column_types={name: pa.string() for name in text_columns},
                ),
            )
        except pa.ArrowInvalid as exc:
            reason = str(exc).strip().splitlines()[0][:200]
            raise InputError(
                f"{self.path}: not a readable CSV with a header row (in the rows from line "
                f"{self._line_at(offset)}: {reason})"
            ) from None

    def _line_at(self, offset: int) -> int:
        """Line number of the byte at `offset`; counted only for an error message."""
        with open_bytes(self.path) as handle:
            return handle.read(offset).count(b"\n") + 1

    def __iter__(self):
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for chunk in self._raw_chunks():
                parsing = pool.submit(self._parse, *chunk, frozenset(self.text_columns))
                if pending is not None:
                    yield self._typed(*pending)
                pending = (parsing, *chunk)
            if pending is not None:
                yield self._typed(*pending)

    def _typed(self, parsing, offset: int, buffer, quoted: bool):
        table = parsing.result()
        odd = [field.name for field in table.schema if not _profiled_type(field.type)]
        if odd:
            # Dates, booleans, ...: keep their text exactly, in this chunk and every later one.
            self.text_columns.update(odd)
            table = self._parse(offset, buffer, quoted, frozenset(self.text_columns))
        return table


def _profiled_type(arrow_type) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_null(arrow_type)
        or pa.types.is_binary(arrow_type)  # Arrow's guess for bytes that are not UTF-8
    )


def _row_boundary(buffer: bytes, quoted: bool) -> int:
    """Offset just after the last line end that is outside quotes (0 if there is none)."""
    if not quoted:
        return buffer.rfind(b"\n") + 1
    raw = np.frombuffer(buffer, dtype=np.uint8)
    inside = np.cumsum(raw == ord('"')) % 2  # "" inside a quoted field keeps the parity
    ends = np.flatnonzero((raw == ord("\n")) & (inside == 0))
    return int(ends[-1]) + 1 if len(ends) else 0


class ParquetChunks:
    """A Parquet file as Arrow record batches; types Arrow cannot profile become text."""

    def __init__(self, path: Path):
        import pyarrow.parquet as pq

        self.path = path
        try:
            self.file = pq.ParquetFile(str(path))
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        self.header = list(self.file.schema_arrow.names)
        if len(set(self.header)) != len(self.header):
            raise InputError(f"{path}: a column name appears twice in the Parquet schema")

    def __iter__(self):
        rows = max(1, CHUNK_BYTES // 64)
        try:
            for batch in self.file.iter_batches(batch_size=rows):
                columns = []
                for i, name in enumerate(self.header):
                    array = batch.column(i)
                    if pa.types.is_dictionary(array.type):
                        array = array.dictionary_decode()
                    if pa.types.is_large_binary(array.type):
                        array = array.cast(pa.binary())  # binary: text, or not UTF-8 (add_array)
                    elif not _profiled_type(array.type):
                        try:
                            array = pc.cast(array, pa.string())
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                            raise InputError(
                                f"{self.path}: column {name!r} has type {array.type}, which "
                                "cannot be read as numbers or text"
                            ) from None
                    columns.append(array)
                yield pa.Table.from_arrays(columns, names=self.header)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{self.path}: not a readable Parquet file ({exc})") from None


def add_array(column: ColumnProfile, array, reader, name: str) -> None:
    """Profiles one chunk of one column (an Arrow array or chunked array)."""
    kind = array.type
    column.missing += array.null_count
    if pa.types.is_null(kind) or array.null_count == len(array):
        return
    if pa.types.is_integer(kind):
        values = (array.drop_null() if array.null_count else array).to_numpy()
        column.add_numbers(np.sort(values).astype(np.float64), True)  # ints sort faster
        return
    if pa.types.is_floating(kind):
        values = array.drop_null() if array.null_count else array
        values = np.asarray(values.to_numpy(), dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            nan = np.isnan(values)  # Parquet's NaN: missing, as the "nan" token in a CSV
            column.missing += int(nan.sum())
            odd = values[~finite & ~nan]  # inf or an overflowing literal: not usable, so text
            if len(odd):
                labels, counts = np.unique(odd, return_counts=True)
                texts = [repr(float(v)) for v in labels]
                column.add_texts(texts, counts, np.zeros(len(texts), bool))
            values = values[finite]
        column.add_numbers(np.sort(values), False)
        return
    if pa.types.is_binary(kind):  # CSV: Arrow's guess for bytes that are not UTF-8
        try:
            array = pc.cast(array, pa.string())  # Parquet bytes that are UTF-8 are text
        except pa.ArrowInvalid:
            example = next(v for v in array.drop_null().to_pylist() if _not_utf8(v))
            raise InputError(
                f"{reader.path}: column {name!r} holds bytes that are not UTF-8 (e.g. "
                f"{short(example)}); expected UTF-8 text"
            ) from None
    add_text_array(column, array)


def _not_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def add_text_array(column: ColumnProfile, array) -> None:
    counted = pc.value_counts(array.drop_null())
    raw, counts = counted.field("values"), counted.field("counts").to_numpy().astype(np.int64)
    values = pc.utf8_trim_whitespace(raw)
    if not pc.all(pc.equal(values, raw)).as_py():  # " M" and "M" are one value: add them up
        encoded = values.dictionary_encode()
        counts = np.bincount(encoded.indices.to_numpy(), weights=counts).astype(np.int64)
        values = encoded.dictionary
    missing = pc.is_in(values, value_set=pa.array(MISSING_TOKENS)).to_numpy(zero_copy_only=False)
    if missing.any():  # e.g. " NA ": a missing token once the spaces are gone
        column.missing += int(counts[missing].sum())
        keep = np.flatnonzero(~missing)
        values, counts = values.take(pa.array(keep)), counts[keep]
    numeric = pc.match_substring_regex(values, NUMBER_PATTERN).to_numpy(zero_copy_only=False)
    if numeric.any():
        numbers = pc.cast(values.filter(pa.array(numeric)), pa.float64()).to_numpy()
        finite = np.isfinite(numbers)  # 1e999 matches the pattern but is not usable
        numeric[np.flatnonzero(numeric)[~finite]] = False
        number_counts = counts[numeric]
        integer = pc.match_substring_regex(values, INTEGER_PATTERN).to_numpy(zero_copy_only=False)
        column.add_numbers(
            np.sort(np.repeat(numbers[finite], number_counts)),
            bool(integer[numeric].all()),
            listed=False,
        )
    column.add_texts(values.to_pylist(), counts, numeric)
