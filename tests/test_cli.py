import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit import cli


def test_record_writes_results(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    monkeypatch.setenv("LABKIT_RESULTS", str(out))
    monkeypatch.setattr(cli, "_RESULTS", {})
    assert cli.record("acc", 0.8) == 0.8
    cli.record("curve", {"100": 0.6})
    assert json.loads(out.read_text()) == {"acc": 0.8, "curve": {"100": 0.6}}
    with pytest.raises(TypeError, match="JSON-serialisable"):
        cli.record("bad", object())


def write_nb(path, *sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_run_reports_pass_fail_time_memory_and_results(tmp_path, capsys):
    good = write_nb(tmp_path / "good.ipynb", "import labkit, os",
                    "labkit.record('scale', os.environ['LABKIT_SCALE'])",
                    "x = bytearray(200 * 2**20)")  # 200 MB, so the peak shows
    bad = write_nb(tmp_path / "bad.ipynb", "a = 1", "assert a == 2, 'a is not 2'", "b = 3")
    rows = cli.run([good, bad], "smoke", tmp_path / "report")
    assert [r["status"] for r in rows] == ["passed", "failed"]
    assert rows[0]["results"] == {"scale": "smoke"} and rows[0]["peak_mb"] >= 200
    assert rows[1]["failed"] == {"cell": 1, "error": "AssertionError: a is not 2"}
    assert rows[0]["wall_s"] > 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| good.ipynb | smoke | passed |" in report and "a is not 2" in report
    assert json.loads((tmp_path / "report" / "report.json").read_text()) == rows


def test_cli_without_notebooks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--scale", "smoke"]) == 2
