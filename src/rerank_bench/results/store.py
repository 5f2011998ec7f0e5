"""Result files: the CSV (one row per case) and its raw-sample sidecar (JSON lines, one per case).

Both are appended to and fsync'ed after every case, so a crash or Ctrl-C loses nothing measured; a torn
last line (the process died inside a write) is ignored on read and cut off before appending again.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_bench.common.case_key import case_id_for
from rerank_bench.errors import EnvironmentProblem, RerankBenchError, ResultFileError, UsageError
from rerank_bench.results.schema import (
    ADDED_SINCE,
    BOOL_COLUMNS,
    COLUMN_NAMES,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    SCHEMA_VERSION,
    UPGRADABLE_VERSIONS,
    ResultRow,
)

# A spreadsheet executes a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def unneutralise(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:2] in _FORMULA_START else value


def format_cell(value: Any) -> str:
    """Numbers stay numbers, None is empty, text that could run as a formula is quoted with a leading '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ""
        return f"{value:.7g}"
    return neutralise(str(value))


def samples_path_for(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".samples.jsonl")


def cut_torn_tail(path: Path) -> int:
    """Drop a final line that has no newline (a write interrupted by a crash). Returns bytes removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return 0
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return 0
        # find the last newline
        chunk = 1 << 16
        pos = size
        keep = 0
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            data = f.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            pos = start
        f.truncate(keep)
        return size - keep


def _complete_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    return lines[:-1]  # the piece after the last newline is empty, or torn


def parse_cell(name: str, text: str, where: str) -> Any:
    """One cell as its column's type (results/schema.py): None when empty; a number that is not one, or is
    not finite, is an error naming the file, row and column (the sweep never writes such a cell)."""
    text = unneutralise(text or "")
    if name not in FLOAT_COLUMNS | INT_COLUMNS | BOOL_COLUMNS:
        return text
    if text == "":
        return None
    if name in BOOL_COLUMNS:
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        raise ResultFileError(f"{where}: column {name} is {text!r}, not a number") from None
    if not math.isfinite(number):
        raise ResultFileError(f"{where}: column {name} is {text}")
    return int(number) if name in INT_COLUMNS else number


def read_header(path: Path) -> list[str] | None:
    """The CSV header of a regular file, or None when it cannot be a result file (not a regular file,
    unreadable, binary, empty). Reads at most 64 KiB: a binary file has no line to find."""
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        first = head.split(b"\n", 1)[0].decode("utf-8")
        return next(csv.reader([first]), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def is_result_file(path: Path) -> bool:
    return "schema_version" in (read_header(path) or [])


def read_rows(path: Path) -> list[ResultRow]:
    """Rows of a result CSV with every cell parsed to its column's type, formula quoting undone; the schema
    version is checked and older versions are upgraded (their missing columns empty)."""
    if not path.exists():
        raise ResultFileError(f"result file {path} does not exist")
    if not is_result_file(path):
        if read_header(path) is None and path.stat().st_size == 0:
            return []
        raise ResultFileError(f"{path} is not a rerank-bench result file (no schema_version column)")
    reader = csv.DictReader(io.StringIO("\n".join(_complete_lines(path)) + "\n"))
    rows = []
    for number, cells in enumerate(reader, start=2):
        version = cells.get("schema_version", "")
        if version in UPGRADABLE_VERSIONS:
            cells = _upgrade({**{name: "" for name in ADDED_SINCE[version]}, **cells}, version)
        elif version != str(SCHEMA_VERSION):
            raise ResultFileError(
                f"{path}:{number}: schema version {version!r}, this rerank-bench reads version {SCHEMA_VERSION}",
                "regenerate the file with this version, or use the rerank-bench that wrote it",
            )
        where = f"{path}:{number}"
        rows.append({k: parse_cell(k, v, where) for k, v in cells.items() if k is not None})
    return rows


def _upgrade(cells: dict[str, str], version: str) -> dict[str, str]:
    """A row of an older version in this version's terms. Before 6, an endpoint row's percentiles were over
    completed requests only: they are that row's completed_p*_ms; p*_ms, which now count failures, keep the
    figure only where no request failed (then both mean the same). Before 7, max_length was the length the model
    truncated at (results/schema.py)."""
    if int(version) < 6 and cells.get("load_mode"):
        for q in ("50", "95", "99"):
            cells[f"completed_p{q}_ms"] = cells.get(f"p{q}_ms", "")
        if cells.get("requests_failed") not in ("", "0"):
            for q in ("50", "90", "95", "99"):
                cells[f"p{q}_ms"] = ""
            cells["percentile_note"] = "; ".join(
                n
                for n in (cells.get("percentile_note", ""), "written before failures counted: see completed_p*_ms")
                if n
            )
    if int(version) < 7 and not cells.get("load_mode"):
        # weights carried the head's fate and max_length the length the model truncated at; the case id was
        # hashed from the planned weights and the max_length setting, which was empty wherever the id hashed with
        # an empty one is the row's own.
        weights = cells.get("weights", "")
        cells["random_head"] = "true" if weights.endswith("+random-head") else "false" if weights else ""
        cells["weights"] = weights.removesuffix("+random-head")
        cells["effective_max_length"] = cells.get("max_length", "")
        if cells.get("max_length") and case_id_for({**cells, "max_length": ""}) == cells.get("case_id"):
            cells["max_length"] = ""
    return {**cells, "schema_version": str(SCHEMA_VERSION)}


@dataclass
class FoundFiles:
    files: list[Path]
    skipped: list[Path]  # CSV files under a folder that are not result files (a report's leaderboard.csv)

    def note(self) -> str | None:
        if not self.skipped:
            return None
        names = ", ".join(str(p) for p in self.skipped[:3]) + (" ..." if len(self.skipped) > 3 else "")
        return f"skipped {len(self.skipped)} CSV file(s) that are not rerank-bench results: {names}"


def find_result_files(paths: list[Path]) -> FoundFiles:
    """The one way every command finds result files: a file named explicitly is read (and is an error if it
    is not a result file); a folder is searched recursively for CSV files, skipping those that are not
    result files."""
    files: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*.csv")):
                (files if is_result_file(found) else skipped).append(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ResultFileError(f"{path} does not exist")
    if not files:
        where = ", ".join(map(str, paths))
        raise ResultFileError(f"no result CSV files in {where}", "a sweep writes them under results/")
    return FoundFiles(files=list(dict.fromkeys(files)), skipped=skipped)


def read_samples(path: Path) -> dict[tuple[str, str], list[float]]:
    """(run_id, case_id) -> raw per-query latencies in ms, from a sidecar file; torn lines are skipped."""
    out: dict[tuple[str, str], list[float]] = {}
    if not path.exists():
        return out
    for line in _complete_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        # null: a request that failed (served levels), slower than any reply
        out[(obj["run_id"], obj["case_id"])] = [math.inf if v is None else float(v) for v in obj["latencies_ms"]]
    return out


def output_error(path: Path, exc: OSError) -> RerankBenchError:
    """A failed write as one line: a full disk is the environment (exit 3), any other failure a bad path (2)."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return EnvironmentProblem(f"cannot write {path}: {reason}", "free some space, or write elsewhere")
    return UsageError(f"cannot write {path}: {reason}", "choose a path you can write to")


def check_output(path: Path, option: str = "--output") -> None:
    """Before anything is measured: the output must be a new file, or a result file of this schema (rows are
    appended to it). Anything else that is already there is the user's and is refused, untouched."""
    if path.exists():
        if path.is_dir():
            raise UsageError(f"{option} {path} is a folder", "give a file name, e.g. results/run.csv")
        if not path.is_file():
            raise UsageError(f"{option} {path} is not a regular file", "give a file name, e.g. results/run.csv")
        if path.stat().st_size > 0:
            header = read_header(path)
            if header is None or "schema_version" not in header:
                raise ResultFileError(
                    f"{option} {path} exists and is not a rerank-bench result file; it is left as it is",
                    "choose another file name",
                )
            if header != list(COLUMN_NAMES):
                raise ResultFileError(
                    f"{path} already holds results with other columns (another schema version)",
                    "write to a new file with --output",
                )
        if not os.access(path, os.W_OK):
            raise UsageError(f"cannot write {path}: permission denied", "choose a path you can write to")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create {path}: {parent} is not a folder you can write to", "choose another path")


class OutputBusy(UsageError):
    """Another process holds the lock on this result file."""


class ResultWriter:
    """Appends rows and samples, durably, one case at a time, under an advisory lock (two sweeps writing one
    file would interleave their rows and slow each other down)."""

    def __init__(self, csv_path: Path) -> None:
        check_output(csv_path)
        self.csv_path = csv_path
        self.samples_path = samples_path_for(csv_path)
        try:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            self._csv = open(csv_path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - open for the writer's life
        except OSError as exc:
            raise output_error(csv_path, exc) from None
        try:
            self._lock()
            # Only now, with the file verified to be ours and locked: drop a line torn by a crash.
            cut_torn_tail(csv_path)
            cut_torn_tail(self.samples_path)
            self._samples = open(self.samples_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if csv_path.stat().st_size == 0:
                self._write_line(self._csv, self._csv_line(COLUMN_NAMES))
        except OSError as exc:
            self._csv.close()
            raise output_error(csv_path, exc) from None
        except BaseException:
            self._csv.close()
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            return
        try:
            fcntl.flock(self._csv.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusy(
                f"another rerank-bench is writing {self.csv_path}", "wait for it, or write to another --output"
            ) from None

    @staticmethod
    def _csv_line(values: Iterable[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(list(values))
        return buffer.getvalue()

    @staticmethod
    def _write_line(handle: Any, line: str) -> None:
        """Append one whole line and fsync it, or nothing: a write the disk refuses halfway (full, or over a
        file-size limit) is cut back, so a torn row is never left for a reader to take as a row."""
        handle.flush()  # every line goes through here, so nothing is pending in the text layer
        fd = handle.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        data = memoryview(line.encode("utf-8"))
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise

    @staticmethod
    def row_line(row: dict[str, Any]) -> str:
        unknown = set(row) - set(COLUMN_NAMES)
        if unknown:
            raise ValueError(f"not schema columns: {sorted(unknown)}")
        row = {**row, "schema_version": SCHEMA_VERSION}
        return ResultWriter._csv_line(format_cell(row.get(name)) for name in COLUMN_NAMES)

    @staticmethod
    def samples_line(run_id: str, case_id: str, latencies_ms: list[float]) -> str:
        record = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "case_id": case_id,
            # a failed request (inf) is written as null: JSON has no infinity
            "latencies_ms": [None if math.isinf(v) else round(v, 4) for v in latencies_ms],
        }
        return json.dumps(record) + "\n"

    def write_row(self, row: dict[str, Any]) -> None:
        self._write_line(self._csv, self.row_line(row))

    def write_samples(self, run_id: str, case_id: str, latencies_ms: list[float]) -> None:
        self._write_line(self._samples, self.samples_line(run_id, case_id, latencies_ms))

    def close(self) -> None:
        for handle in (getattr(self, "_csv", None), getattr(self, "_samples", None)):
            if handle is not None:
                with contextlib.suppress(OSError):  # a full disk may refuse the last flush; every row was fsync'ed
                    handle.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rescue(row: dict[str, Any], run_id: str, case_id: str, latencies_ms: list[float]) -> str:
    """A row that could not be written where it belongs, kept where it can be recovered: a file in the
    temporary folder (header, row, and its samples beside it), or, if even that fails, stderr. Returns where."""
    import sys
    import tempfile

    target = Path(tempfile.gettempdir()) / f"rerank-bench-rescued-{run_id}.csv"
    try:
        new = not target.exists()
        with open(target, "a", encoding="utf-8", newline="") as f:
            f.write((ResultWriter._csv_line(COLUMN_NAMES) if new else "") + ResultWriter.row_line(row))
        if latencies_ms:
            with open(samples_path_for(target), "a", encoding="utf-8") as f:
                f.write(ResultWriter.samples_line(run_id, case_id, latencies_ms))
        return str(target)
    except OSError:
        sys.stderr.write(ResultWriter._csv_line(COLUMN_NAMES) + ResultWriter.row_line(row))
        return "stderr (the CSV lines above)"


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Any other CSV the tool writes (report's leaderboard.csv): the same cell rules as result files, so text
    that a spreadsheet would run as a formula is quoted there too."""
    lines = [ResultWriter._csv_line(columns)] if columns else []
    lines += [ResultWriter._csv_line(format_cell(row.get(name)) for name in columns) for row in rows]
    write_text(path, "".join(lines))


def write_text(path: Path, text: str) -> None:
    """Every other file the tool writes (reports, JSON for CI), with a failed write as one typed line."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise output_error(path, exc) from None
