import csv

import pytest

from rerank_bench.errors import ResultFileError
from rerank_bench.results.schema import COLUMN_NAMES, SCHEMA_VERSION
from rerank_bench.results.store import ResultWriter, cut_torn_tail, format_cell, read_rows, read_samples


def test_formula_text_is_neutralised_and_numbers_stay_numbers():
    assert format_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert format_cell("+1") == "'+1" and format_cell("@SUM(A1)") == "'@SUM(A1)" and format_cell("-cmd") == "'-cmd"
    assert format_cell(-3.5) == "-3.5" and format_cell(12) == "12" and format_cell(None) == ""
    assert format_cell(True) == "true" and format_cell(float("nan")) == ""
    assert format_cell("minilm-l6") == "minilm-l6"


def test_rows_round_trip_and_formulas_are_undone_on_read(tmp_path):
    path = tmp_path / "r.csv"
    with ResultWriter(path) as writer:
        writer.write_row({"model": "=evil()", "batch_size": 8, "pairs_per_s": 12.5, "status": "ok"})
        writer.write_samples("run1", "case1", [1.0, 2.5])
    raw = list(csv.reader(path.open()))
    assert raw[0] == list(COLUMN_NAMES)
    assert raw[1][COLUMN_NAMES.index("model")] == "'=evil()"
    (row,) = read_rows(path)
    assert row["model"] == "=evil()" and row["schema_version"] == SCHEMA_VERSION
    # typed on read, once: numbers are numbers, empty cells None
    assert row["batch_size"] == 8 and row["pairs_per_s"] == 12.5 and row["p95_ms"] is None
    assert read_samples(tmp_path / "r.samples.jsonl") == {("run1", "case1"): [1.0, 2.5]}


def test_a_number_cell_that_is_not_a_number_names_the_row_and_column(tmp_path):
    path = tmp_path / "r.csv"
    with ResultWriter(path) as writer:
        writer.write_row({"model": "a", "status": "ok", "pairs_per_s": 3.0})
    path.write_text(path.read_text().replace(",3,", ",fast,"))
    with pytest.raises(ResultFileError, match=r"r.csv:2: column pairs_per_s is 'fast', not a number"):
        read_rows(path)


def test_unknown_columns_are_refused(tmp_path):
    with ResultWriter(tmp_path / "r.csv") as writer, pytest.raises(ValueError, match="not schema columns"):
        writer.write_row({"pairs_per_second": 1.0})


def test_torn_last_line_is_ignored_on_read_and_cut_before_appending(tmp_path):
    path = tmp_path / "r.csv"
    with ResultWriter(path) as writer:
        writer.write_row({"model": "a", "status": "ok"})
    with path.open("a") as f:
        f.write("1,run,case,2026")  # the process died inside a write
    assert [r["model"] for r in read_rows(path)] == ["a"]
    assert cut_torn_tail(path) == len("1,run,case,2026")
    with ResultWriter(path) as writer:
        writer.write_row({"model": "b", "status": "ok"})
    assert [r["model"] for r in read_rows(path)] == ["a", "b"]


def test_other_schema_versions_are_refused_with_the_row(tmp_path):
    path = tmp_path / "r.csv"
    with ResultWriter(path) as writer:
        writer.write_row({"model": "a"})
    text = path.read_text().splitlines()
    text[1] = "99" + text[1][text[1].index(",") :]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(ResultFileError, match=r"r.csv:2: schema version '99'"):
        read_rows(path)


def test_appending_to_a_file_with_other_columns_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("schema_version,a,b\n1,2,3\n")
    with pytest.raises(ResultFileError, match="other columns"):
        ResultWriter(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ResultFileError, match="is not a rerank-bench result file"):
        ResultWriter(path)
    assert path.read_text() == "a,b\n1,2\n"


@pytest.mark.slow  # starts cog in a process; .ci/run also runs `cog --check` before the suite
def test_the_column_reference_is_generated_from_the_schema_and_current():
    """docs/result-columns.md is cog output of results/schema.py; `cog --check` fails when it drifts."""
    import subprocess
    import sys
    from pathlib import Path

    doc = Path(__file__).parent.parent / "docs" / "result-columns.md"
    text = doc.read_text()
    missing = [name for name in COLUMN_NAMES if f"| `{name}` |" not in text]
    assert missing == []
    catalog_table = doc.parent / "commands.md"  # the catalog's table, generated from models.toml
    check = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", str(doc), str(catalog_table)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


# Literal ids of committed rows: a change to the key or its hashing that moves them breaks `--resume` and the
# samples sidecars of every result file already written, so it must be a deliberate schema change.
PINNED_IDS = [
    # a catalog twin, max_length the catalog's 512 when planned
    ("results/2026-11-23-vm-7056ba228b77.csv", "39d8d88ee619", {"model": "minilm-l6", "batch_size": 8, "depth": 10}),
    # a local folder with --allow-random-head, max_length unset (the model's own, 512 once loaded)
    (
        "results/2026-11-23-vm-7056ba228b77-backends.csv",
        "5ef8df78186a",
        {"backend": "onnx", "dtype": "fp32", "batch_size": 4, "max_length": None, "random_head": True},
    ),
]


@pytest.mark.parametrize(("path", "case_id", "columns"), PINNED_IDS)
def test_committed_rows_keep_their_ids_and_their_own_columns_reproduce_them(path, case_id, columns):
    from pathlib import Path

    from rerank_bench.common.case_key import case_id_for

    root = Path(__file__).resolve().parent.parent
    row = next(r for r in read_rows(root / path) if r["case_id"] == case_id)
    assert {k: row[k] for k in columns} == columns
    assert case_id_for(row) == case_id


def test_every_committed_in_process_row_reproduces_its_id_read_raw_or_parsed():
    """Endpoint rows before version 7 hashed the offered rate at full precision, which their 7-digit cell cannot
    give back; every other committed row, and every row written now, is reproduced by its own key columns."""
    from pathlib import Path

    from rerank_bench.common.case_key import case_id_for

    root = Path(__file__).resolve().parent.parent
    checked = 0
    for path in sorted((root / "results").glob("*.csv")):
        for row in read_rows(path):
            if row.get("load_mode"):
                continue
            assert case_id_for(row) == row["case_id"], (path.name, row["case_id"])
            checked += 1
    assert checked > 100


def test_a_key_read_back_as_text_hashes_like_the_values_written(tmp_path):
    from rerank_bench.common.case_key import case_id_for

    key = {"model": "m", "depth": 20, "offered_rps": 23.214513799, "burstiness": 1.0, "load_mode": "open"}
    as_cells = {k: format_cell(v) for k, v in key.items()}
    assert as_cells["offered_rps"] == "23.21451" and as_cells["burstiness"] == "1"
    assert case_id_for(as_cells) == case_id_for(key)
    assert case_id_for({**key, "offered_rps": 23.2146}) != case_id_for(key)
