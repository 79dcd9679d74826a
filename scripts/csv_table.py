"""CSV files as Arrow tables of text: how the step scripts read their input data.

Each file is read by Arrow's multi-threaded reader when it is plain (ASCII, no quotes, every row
one line), else by the csv module, which names the line of a short row or bad quoting; both give
the same table: stripped text, missing cells (step_common.MISSING_TOKENS) null. It needs numpy,
pyarrow and the standard library: the SageMaker XGBoost 3.0-5 image has Python 3.10, numpy 2.1.0
and pyarrow 22.0.0 (aws/sagemaker-xgboost-container, docker/3.0-5/base/Dockerfile.cpu).
"""

import csv
import io
import re
from bisect import bisect_right

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from step_common import MISSING_TOKENS, InputError, csv_files, not_utf8, read_bytes

# pyarrow imports pandas (0.3 s or more) the first time it converts Python or numpy values
# (pa.array, pa.scalar, to_numpy, Python constants passed to pyarrow.compute); the steps build
# and read Arrow buffers directly instead.


def strings(values):
    """A string array of Python strings."""
    data = [value.encode() for value in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(item) for item in data], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(pa.string(), len(data), buffers)


def from_numpy(values):
    """A 1-D numeric or boolean numpy array as an Arrow array."""
    values = np.ascontiguousarray(values)
    if values.dtype == bool:
        data = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(data)])
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def to_numpy(array, missing):
    """An Arrow numeric or boolean array (or chunked array) as numpy, `missing` where null."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n, offset = len(array), array.offset
    if pa.types.is_boolean(array.type):
        values = bits(array.buffers()[1], offset, n)
    else:
        dtype = np.dtype({pa.float64(): np.float64, pa.int32(): np.int32}.get(array.type, np.int64))
        values = np.zeros(n, dtype)
        if n:
            values[:] = np.frombuffer(array.buffers()[1], dtype, n, offset * dtype.itemsize)
    if array.null_count:
        values[~bits(array.buffers()[0], offset, n)] = missing
    return values


def bits(buffer, offset, n):
    data = np.frombuffer(buffer, np.uint8) if n else np.zeros(0, np.uint8)
    return np.unpackbits(data, bitorder="little")[offset : offset + n].astype(bool)


# Long cells are data, as in Arrow's reader (the csv module's default limit is 128 KiB).
csv.field_size_limit(2**31 - 1)
# Cell values read as "missing" (then imputed with the train-split fill value): the one list
# every step uses, compared after stripping spaces.
MISSING = strings(sorted(MISSING_TOKENS))
# Bytes after which Arrow's reader and the csv module could disagree: quotes (fields spanning
# lines), NUL, and the separators str.strip() removes but Arrow's ASCII trim keeps.
UNUSUAL = (b'"', b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")
# Any data after the header (read_arrow leaves a file without rows to the csv module).
_NOT_SPACE = re.compile(rb"\S")


class Origins:
    """Where each row of a read_folder() table came from: origins[i] is (file name, line)."""

    def __init__(self):
        self.starts, self.files, self.count = [], [], 0

    def add(self, name, rows, lines=None):
        """A file of `rows` rows; `lines` their line numbers, None when row i is on line i + 2."""
        self.starts.append(self.count)
        self.files.append((name, lines))
        self.count += rows

    def __getitem__(self, index):
        at = bisect_right(self.starts, int(index)) - 1
        name, lines = self.files[at]
        offset = int(index) - self.starts[at]
        return name, offset + 2 if lines is None else lines[offset]


def read_arrow(data):
    """(header, table) of a plain CSV file read by Arrow's multi-threaded reader, else None.

    Only for what the csv module would read identically (ASCII, no quotes, at least two
    columns, unique names), so that every row is one line (row i on line i + 2: a blank line
    has too few fields and sends the file to read_careful, as does any other irregularity).
    Nor for a header without data rows: Arrow's parallel read of a file with no rows can leave
    its background work behind at exit (apache/arrow#38676), and the process then aborted now
    and then ("terminate called without an active exception") instead of exiting 1."""
    if not data.isascii() or any(byte in data for byte in UNUSUAL):
        return None
    ends = [end for end in (data.find(b"\r"), data.find(b"\n")) if end >= 0]  # as Arrow splits
    header_end = min(ends, default=len(data))
    if not _NOT_SPACE.search(data, header_end):
        return None
    header = [name.strip() for name in data[:header_end].decode().split(",")]
    if len(header) < 2 or "" in header or len(set(header)) != len(header):
        return None
    names = [f"c{i}" for i in range(len(header))]
    spaced = b" " in data or b"\t" in data  # else Arrow matches the missing tokens itself
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[] if spaced else list(MISSING_TOKENS),
                strings_can_be_null=not spaced,
            ),
        )
    except pa.ArrowInvalid:
        return None
    # Columns stay in Arrow's blocks (a copy of the text saved): compute kernels and to_numpy()
    # take chunked arrays.
    columns = table.columns
    if spaced:
        columns = [missing_to_null(pc.ascii_trim_whitespace(column)) for column in columns]
    return header, pa.table(columns, names=header)


def missing_to_null(column):
    return pc.if_else(pc.is_in(column, value_set=MISSING), pa.nulls(1, pa.string())[0], column)


def read_careful(data, path):
    """(header, table, line of each row) read with the csv module, which names the line of a
    short row (e.g. a truncated last line) or of bad quoting instead of guessing."""
    line = 0
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(path, data, error) from None
    try:
        with io.StringIO(text, newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise InputError(f"{path}: file is empty; expected a CSV header row")
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates or "" in header:
                raise InputError(
                    f"{path}: header has empty or repeated column names "
                    f"{duplicates or ['']}; expected unique names"
                )
            rows, lines = [], []
            for row in reader:
                line = reader.line_num
                if not row:  # blank line, e.g. at the end of the file
                    continue
                if len(row) != len(header):
                    raise InputError(
                        f"{path}: line {line} has {len(row)} fields; expected {len(header)} "
                        f"like the header (malformed or truncated CSV)"
                    )
                rows.append([value.strip() for value in row])
                lines.append(line)
    except csv.Error as error:
        raise InputError(f"{path}: malformed CSV after line {line}: {error}") from None
    columns = [strings([row[i] for row in rows]) for i in range(len(header))]
    return header, pa.table([missing_to_null(c) for c in columns], names=header), lines


def read_file(path, name):
    """One CSV file as (header, table of stripped text with missing cells null, lines: None
    when row i is on line i + 2). Messages name the file as `name`."""
    data = read_bytes(path, name)
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        data = data[3:]
    fast = read_arrow(data)
    return (*fast, None) if fast else read_careful(data, name)


def read_folder(folder, required, same_columns):
    """All CSV files under folder concatenated, as (table of text, Origins). Missing cells are
    null; every file must have the `required` columns, and with same_columns every file must
    have exactly the first file's columns (else absent columns are null in its rows)."""
    files = csv_files(folder)
    if not files:
        raise InputError(
            f"{folder}: no .csv files found (nor .csv.gz); expected CSV files with a header row"
        )
    tables, origins, names = [], Origins(), []
    for full_path in files:
        path = full_path.relative_to(folder)
        header, table, lines = read_file(full_path, path)
        for column in required:
            if column not in header:
                raise InputError(
                    f"{path}: required column {column!r} is missing; expected columns "
                    f"{', '.join(required)} (header has {', '.join(header)})"
                )
        if same_columns and tables and set(header) != set(names):
            extra = sorted(set(header) ^ set(names))
            raise InputError(
                f"{path}: column {extra[0]!r} is not in both this file and {files[0]}; "
                f"expected every file to have the same columns"
            )
        names += [name for name in header if name not in names]
        tables.append(table)
        origins.add(path, table.num_rows, lines)
    if origins.count == 0:
        names = ", ".join(str(path.relative_to(folder)) for path in files)
        what = "the file has" if len(files) == 1 else "each file has"
        raise InputError(f"{names}: {what} a header but no data rows; expected data rows")
    if len(tables) == 1 and tables[0].column_names == names:
        return tables[0], origins
    parts = [
        pa.table(
            [t[n] if n in t.column_names else pa.nulls(t.num_rows, pa.string()) for n in names],
            names=names,
        )
        for t in tables
    ]
    return pa.concat_tables(parts).combine_chunks(), origins
