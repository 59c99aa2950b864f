"""The CLI's contract: component selection, report lines, exit status, JSON output."""

from __future__ import annotations

import json

from pyggml import parity
from pyggml.cli import main


def test_unknown_component_is_an_error(capsys):
    assert main(["parity", "no-such-component"]) == 2
    assert "unknown component" in capsys.readouterr().err


def test_unknown_bench_case_is_an_error(capsys):
    assert main(["bench", "no-such-case"]) == 2


def test_parity_report_and_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["parity", "gguf", "--limit", "5", "--json", str(out)])
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("gguf") and "cases" in line
    data = json.loads(out.read_text())
    report = data["components"][0]
    assert report["component"] == "gguf" and report["cases"] == 5
    assert report["mismatches"] == 0 and report["first_mismatch"] is None, report
    assert rc == 0


def test_a_mismatch_fails_the_run(tmp_path, capsys, monkeypatch):
    # a component whose one case differs: exit status 1, the mismatch counted and pinpointed
    import sys
    import types

    fake = types.ModuleType("pyggml_fake_component")
    fake.cases = lambda opts: iter([parity.Case("same", 1, 1), parity.Case("differs", {"x": 1}, {"x": 2})])
    monkeypatch.setitem(sys.modules, "pyggml_fake_component", fake)
    monkeypatch.setitem(parity.COMPONENTS, "fake", "pyggml_fake_component")
    out = tmp_path / "r.json"
    assert main(["parity", "fake", "--json", str(out)]) == 1
    report = json.loads(out.read_text())["components"][0]
    assert (report["cases"], report["mismatches"]) == (2, 1)
    assert report["first_mismatch"] == "differs: $.x: pyggml 1 != reference 2"


def test_first_difference_pinpoints_the_path():
    assert parity.first_difference({"a": [1, 2]}, {"a": [1, 3]}) == "$.a[1]: pyggml 2 != reference 3"
    assert parity.first_difference({"a": 1}, {"a": 1}) is None
    assert "length" in parity.first_difference([1], [1, 2])
    assert "only reference" in parity.first_difference({}, {"x": 1})


def test_a_component_with_zero_cases_is_not_ok():
    assert not parity.Report("x").ok


def test_groups_count_cases_per_group(capsys):
    rc = main(["parity", "sampling", "--limit", "40", "--groups"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    group_lines = [line for line in out[1:] if "cases" in line]
    assert group_lines and sum(int(line.split("cases")[1].split()[0]) for line in group_lines) == 40
