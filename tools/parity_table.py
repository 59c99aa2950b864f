"""Rewrite the counts of the README's parity table from ``pyggml parity --json`` runs.

    pyggml parity --json default.json
    pyggml parity grammar --full --json full.json
    python tools/parity_table.py default.json full.json --readme README.md

Each run fills the column its options name (default, or ``--full``) of every row whose
components it ran without an error; a row that names several components (`kv_cells`,
`memory`) gets their sum, and only when the run has all of them.  Rows a run did not cover keep
their numbers, and so does any note after the counts ("(480,000 program steps)"), so every
number the script writes comes from a run, never from a hand edit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HEADER = "| component | what is diffed against the reference | default / `--full` cases |"
# "default / full" counts (or placeholders for a new row, e.g. "TBD / TBD"), then any note
_COUNTS = re.compile(r"^(?P<default>[^ /]+) / (?P<full>[^ /]+)(?P<note>.*)$")


def counts(run: dict[str, Any]) -> dict[str, int]:
    """Cases per component of one run, leaving out components that failed to run."""
    out = {}
    for r in run["components"]:
        if r["error"] is not None or r["cases"] == 0:
            print(f"{r['component']}: not run ({r['error'] or 'no cases'}); its row keeps its number",
                  file=sys.stderr)
            continue
        if r["mismatches"]:
            print(f"{r['component']}: {r['mismatches']} mismatches in this run", file=sys.stderr)
        out[r["component"]] = r["cases"]
    return out


def update(text: str, run: dict[str, Any]) -> str:
    """``text`` (the README) with the table's counts for ``run`` rewritten."""
    column = "full" if run["options"]["full"] else "default"
    have = counts(run)
    lines = text.split("\n")
    i = lines.index(HEADER) + 2
    while i < len(lines) and lines[i].startswith("| `"):
        cells = lines[i].split(" | ")
        names = re.findall(r"`([^`]+)`", cells[0])
        m = _COUNTS.match(cells[-1].removesuffix(" |"))
        if m is None:
            raise ValueError(f"README parity table: no 'default / full' counts in row {lines[i]!r}")
        if all(n in have for n in names):
            parts = m.groupdict()
            parts[column] = f"{sum(have[n] for n in names):,}"
            cells[-1] = f"{parts['default']} / {parts['full']}{parts['note']} |"
            lines[i] = " | ".join(cells)
        i += 1
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="JSON files written by pyggml parity --json")
    ap.add_argument("--readme", default="README.md")
    a = ap.parse_args()
    readme = Path(a.readme)
    text = readme.read_text(encoding="utf-8")
    for path in a.runs:
        text = update(text, json.loads(Path(path).read_text()))
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
