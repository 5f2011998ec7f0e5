"""Result files: the CSV (one row per case) and its raw-sample sidecar (JSON lines, one per case).

Both are appended to and fsync'ed after every case, so a crash or Ctrl-C loses nothing measured; a torn
last line (the process died inside a write) is ignored on read and cut off before appending again.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerank_bench.errors import ResultFileError
from rerank_bench.results.schema import (
    ADDED_IN_2,
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
    """The CSV header of a file, or None when it cannot be a result file (unreadable, binary, empty)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return next(csv.reader(f), None)
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
            cells = {**{name: "" for name in ADDED_IN_2}, **cells, "schema_version": str(SCHEMA_VERSION)}
        elif version != str(SCHEMA_VERSION):
            raise ResultFileError(
                f"{path}:{number}: schema version {version!r}, this rerank-bench reads version {SCHEMA_VERSION}",
                "regenerate the file with this version, or use the rerank-bench that wrote it",
            )
        where = f"{path}:{number}"
        rows.append({k: parse_cell(k, v, where) for k, v in cells.items() if k is not None})
    return rows


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
        out[(obj["run_id"], obj["case_id"])] = [float(v) for v in obj["latencies_ms"]]
    return out


class ResultWriter:
    """Appends rows and samples, durably, one case at a time."""

    def __init__(self, csv_path: Path) -> None:
        self.csv_path = csv_path
        self.samples_path = samples_path_for(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(csv_path)
        cut_torn_tail(self.samples_path)
        existing_header = self._existing_header()
        if existing_header is not None and existing_header != list(COLUMN_NAMES):
            raise ResultFileError(
                f"{csv_path} already holds results with other columns (another schema version)",
                "write to a new file with --output",
            )
        self._csv = open(csv_path, "a", encoding="utf-8", newline="")
        self._samples = open(self.samples_path, "a", encoding="utf-8")
        if existing_header is None:
            self._write_line(self._csv, self._csv_line(COLUMN_NAMES))

    def _existing_header(self) -> list[str] | None:
        if not self.csv_path.exists() or self.csv_path.stat().st_size == 0:
            return None
        return read_header(self.csv_path)

    @staticmethod
    def _csv_line(values: Iterable[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(list(values))
        return buffer.getvalue()

    @staticmethod
    def _write_line(handle: Any, line: str) -> None:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())

    def write_row(self, row: dict[str, Any]) -> None:
        unknown = set(row) - set(COLUMN_NAMES)
        if unknown:
            raise ValueError(f"not schema columns: {sorted(unknown)}")
        row = {**row, "schema_version": SCHEMA_VERSION}
        self._write_line(self._csv, self._csv_line(format_cell(row.get(name)) for name in COLUMN_NAMES))

    def write_samples(self, run_id: str, case_id: str, latencies_ms: list[float]) -> None:
        line = json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": run_id,
                "case_id": case_id,
                "latencies_ms": [round(v, 4) for v in latencies_ms],
            }
        )
        self._write_line(self._samples, line + "\n")

    def close(self) -> None:
        self._csv.close()
        self._samples.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Any other CSV the tool writes (report's leaderboard.csv): the same cell rules as result files, so text
    that a spreadsheet would run as a formula is quoted there too."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if columns:
            writer.writerow(columns)
        writer.writerows([format_cell(row.get(name)) for name in columns] for row in rows)
