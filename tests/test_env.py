import os

import pytest
import torch

from labkit.core import env


def test_scale_reads_the_variable(monkeypatch):
    for s in env.SCALES:
        monkeypatch.setenv("LABKIT_SCALE", s.upper())
        assert env.scale() == s


def test_scale_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("LABKIT_SCALE", raising=False)
    assert env.scale() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_scale_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("LABKIT_SCALE", "laptop")
    with pytest.raises(env.ScaleError, match="smoke, cpu, gpu"):
        env.scale()


def test_seed_everything_repeats_random_draws():
    env.seed_everything(3)
    a = torch.rand(4)
    env.seed_everything(3)
    assert torch.equal(a, torch.rand(4))
    with pytest.raises(TypeError):
        env.seed_everything("3")


def test_device_is_a_torch_device():
    assert env.device().type in ("cpu", "cuda")


def test_offline_defaults_respect_the_user(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "LABKIT_ONLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LABKIT_ONLINE", "1")
    env.offline_defaults()
    assert "HF_HUB_OFFLINE" not in os.environ and env.online()
    monkeypatch.delenv("LABKIT_ONLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    env.offline_defaults()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "0"
    assert not env.online()


def test_importing_labkit_turns_the_hub_off():
    import subprocess
    import sys
    code = "import os, labkit; print(os.environ.get('HF_HUB_OFFLINE'))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "LABKIT_ONLINE"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean)
    assert out.stdout.strip() == "1"


def test_doctor_reports_missing_data_and_the_fix(tmp_cache, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_SCALE", "smoke")
    facts = env.doctor()
    out = capsys.readouterr().out
    assert facts["scale"] == "smoke" and facts["cache"] == str(tmp_cache)
    assert facts["fetched"] and not any(facts["fetched"].values())
    assert "labkit fetch" in out and "MISSING" in out
    assert facts["expected"] == env.expected("smoke", facts["matmul_gflops"]) and "run cache" in out
    # a machine twice as fast as the yardstick is told half the yardstick's minutes
    slow, fast = env.expected("cpu"), env.expected("cpu", 2 * env.NORMAL_GFLOPS)
    assert all(abs(fast[lab][0] - slow[lab][0] / 2) <= 0.1 for lab in slow)
    assert facts["cores"] >= 1 and facts["ram_gb"] > 0 and 1 <= facts["usable_cores"] <= facts["cores"]
    assert facts["matmul_gflops"] > 1 and "GFLOP/s" in out


def test_matmul_gflops_is_positive_and_plausible():
    assert 0.5 < env.matmul_gflops(n=256, repeats=2) < 1e6


def test_import_labkit_leaves_torch_for_later():
    import subprocess
    import sys
    code = ("import sys, labkit; assert 'torch' not in sys.modules, 'import labkit loaded torch'; "
            "assert not [m for m in sys.modules if m.startswith(('labkit.labs', 'labkit.course'))]; "
            "labkit.record, labkit.claim, labkit.doctor; "
            "from labkit.core import classifier; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    # the labkit command (and the runner's worker beside each kernel) stays light too
    code = "import sys, labkit.course.cli; assert 'torch' not in sys.modules, 'the labkit command loaded torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_lab_states_its_measured_cost():
    """`labkit doctor` and the README quote the committed reference reports: a new lab must be
    measured at smoke and (cold and warm) at cpu, and every measured run must have passed."""
    from pathlib import Path
    labs = {p.stem for p in (Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for name in ("smoke", "cpu", "cpu-warm"):
        ref = env.reference(name)
        assert ref is not None, f"labkit/reference/{name}.json is missing"
        assert {Path(r["notebook"]).stem for r in ref["notebooks"]} == labs, name
        assert all(r["status"] == "passed" for r in ref["notebooks"]), name
    assert set(env.expected("cpu")) == labs
    cold = env.reference("cpu")["meta"]
    assert cold["scale"] == "cpu" and (cold["fresh"] or cold["run_cache_mb_at_start"] == 0)


def test_machine_facts():
    m = env.machine()
    assert m["torch"] == torch.__version__ and m["python"].count(".") == 2
    assert m["memory_limit_gb"] is None or 0 < m["memory_limit_gb"] < m["ram_gb"]


def test_doctor_says_which_scales_were_measured_and_which_never_ran(capsys):
    from labkit.core import env
    facts = env.doctor()
    said = capsys.readouterr().out
    assert facts["measured_scales"] == [s for s in env.SCALES if (env.REFERENCE / f"{s}.json").exists()]
    assert {"smoke", "cpu"} <= set(facts["measured_scales"]) and "gpu" not in facts["measured_scales"]
    assert "never run by us: gpu" in said and "you are the first" in said


def test_cost_says_how_much_of_a_second_run_is_measured_afresh(monkeypatch, capsys):
    meta = {"matmul_gflops": 120, "cpu": "CPU", "usable_cores": 2, "date": "2026-12-07 10:00 UTC"}
    row = {"notebook": "09_x.ipynb", "wall_s": 100.0, "peak_mb": 900, "results": {"afresh_s": 30.0}}
    monkeypatch.setattr(env, "reference", lambda name: {"meta": meta, "notebooks": [row]} if name in ("cpu", "cpu-warm")
                        else None)
    assert env.cost("09_x", verbose=False)["cpu, second run"] == (200.0, 900)  # x 2: 120 GFLOP/s
    env.cost("09_x")
    out = capsys.readouterr().out
    assert "cpu, second run     3.3 min, peak 900 MB (60 s of it benchmarks and load tests, measured afresh)" in out
    assert "cpu, cold cache     3.3 min, peak 900 MB\n" in out  # cold: nothing set apart
