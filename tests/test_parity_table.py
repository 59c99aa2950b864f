"""tools/parity_table.py: the README's parity counts come from a `pyggml parity --json` run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("parity_table", ROOT / "tools" / "parity_table.py")
assert _spec is not None and _spec.loader is not None
pt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pt)

README = f"""intro

{pt.HEADER}
|---|---|---:|
| `gguf` | files | 919 / 23,602 |
| `kv_cells`, `memory` | cells, programs | 113 / 12,507 (480,000 program steps) |
| `decode` | logits | 1,555 / 41,091 (723 / 36,334 logits rows) |
| `embed` | a new row | TBD / TBD |

after
"""


def _run(full: bool, **cases: int | str) -> dict:
    comps = []
    for name, n in cases.items():
        err = n if isinstance(n, str) else None
        comps.append({"component": name, "cases": 0 if err else n, "mismatches": 0, "error": err})
    return {"options": {"full": full, "seed": 0, "limit": None}, "components": comps}


def _rows(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith("| `")]


def test_default_column_from_a_run():
    out = pt.update(README, _run(False, gguf=1000, kv_cells=80, memory=51, decode="RuntimeError: boom",
                                 embed=12))
    assert _rows(out) == [
        "| `gguf` | files | 1,000 / 23,602 |",
        "| `kv_cells`, `memory` | cells, programs | 131 / 12,507 (480,000 program steps) |",
        # a component that failed to run keeps its row
        "| `decode` | logits | 1,555 / 41,091 (723 / 36,334 logits rows) |",
        "| `embed` | a new row | 12 / TBD |",
    ]
    assert out.startswith("intro\n") and out.endswith("after\n")


def test_full_column_and_partial_runs():
    # a run of one of a row's components leaves the row alone: its sum would be wrong
    out = pt.update(README, _run(True, memory=13000, gguf=24000))
    assert _rows(out)[:2] == [
        "| `gguf` | files | 919 / 24,000 |",
        "| `kv_cells`, `memory` | cells, programs | 113 / 12,507 (480,000 program steps) |",
    ]


def test_row_without_counts_is_an_error():
    with pytest.raises(ValueError):
        pt.update(README.replace("919 / 23,602", "many"), _run(False, gguf=1))
