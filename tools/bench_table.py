"""Rewrite rows of the README's bench table from a ``pyggml bench --json`` run.

    pyggml bench e2e-pp512-smollm2 e2e-tg128-smollm2 --repeat 9 --json bench.json
    python tools/bench_table.py bench.json README.md

Each case in the JSON replaces the table row that names it (or is added at the end of the
table), so every number in the table comes from a run, never from hand edits.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def fmt_ns(ns: float) -> str:
    """A duration with three significant digits in the unit the table uses."""
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= scale:
            v = ns / scale
            return f"{v:#.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{ns:.0f} ns"


def row(r: dict) -> str:
    return f"| `{r['case']}` | {fmt_ns(r['ns_pyggml'])} | {fmt_ns(r['ns_reference'])} | {r['ratio']:.2f} |"


def update(text: str, results: list[dict]) -> str:
    lines = text.split("\n")
    header = lines.index("| case | pyggml | reference | ratio |")
    end = header + 2
    while end < len(lines) and lines[end].startswith("| `"):
        end += 1
    for r in results:
        pat = re.compile(rf"^\| `{re.escape(r['case'])}` \|")
        hits = [i for i in range(header + 2, end) if pat.match(lines[i])]
        if hits:
            lines[hits[0]] = row(r)
        else:
            lines.insert(end, row(r))
            end += 1
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench_json")
    ap.add_argument("readme", nargs="?", default="README.md")
    a = ap.parse_args()
    results = json.loads(Path(a.bench_json).read_text())
    readme = Path(a.readme)
    readme.write_text(update(readme.read_text(encoding="utf-8"), results), encoding="utf-8")


if __name__ == "__main__":
    main()
