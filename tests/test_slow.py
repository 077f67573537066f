"""Slow checks: the labs at `cpu` scale, each asserting its registered claims (`labkit.claim`), within
the memory budget and not much slower than the committed reference run. Minutes, not seconds:
run them with `LABKIT_SCALE=cpu pytest -m slow`, in course order (each lab reads what the
earlier ones saved). CI runs the fast suite and every notebook at `smoke`."""
from pathlib import Path

import pytest

from labkit import env, report

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
LABS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
BUDGET_MB = {"02_pretraining": 1900,  # measured at cpu, cold: 1.84 GB, over issue 16's 1.5 GB (the small BERT
              # and two MiniLMs, one in training, in one kernel; reported in the note)
              "03_fine_tuning": 1800,  # measured at cpu, cold: 1.74 GB, over issue 16's 1.5 GB (MiniLM
              # fine-tuned at 2,000 labels, then the original and adapted MiniLMs of section 8, in one kernel)
              "07_federated": 2048,   # its Flower federation adds a SuperLink and SuperNodes:
              # Binder's 2 GB limit, for the whole process tree;
              "08_compression": 1700,  # measured at cpu, cold: 1.52-1.63 GB, over issue 13's 1.5 GB
              # (torch, ONNX Runtime, the exporter and the teacher's variants in one kernel; reported in the
              # issue's closing note)
              "09_deployment": 2048}  # the kernel and the services it starts: issue 14's 2 GB
# every other lab fits in 1.5 GB


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_lab_at_cpu_scale(lab, tmp_path):
    rep = report.run([NOTEBOOKS / f"{lab}.ipynb"], "cpu", tmp_path)
    assert report.check(rep) == [], rep["notebooks"]
    (row,) = rep["notebooks"]
    assert row["peak_mb"] <= BUDGET_MB.get(lab, 1536), row  # the whole process tree
    reference = env.reference("cpu")
    ref = next(r for r in reference["notebooks"] if Path(r["notebook"]).stem == lab)
    speed = rep["meta"]["matmul_gflops"] / reference["meta"]["matmul_gflops"]  # a faster machine may go faster
    assert row["wall_s"] <= 1.5 * ref["wall_s"] / min(speed, 1.0), (row["wall_s"], ref["wall_s"])
    failed = {k: c for k, c in row["results"].get("claims", {}).items() if c["status"] == "fails"}
    assert not failed, failed  # targets missed and gates shut are findings, not failures
