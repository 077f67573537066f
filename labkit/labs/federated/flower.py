"""Lab 07: the same FedAvg on a real Flower federation, started on this machine.

`run` starts Flower's deployment engine as separate processes on 127.0.0.1: one SuperLink
(the server side, ``flower-superlink``) and one SuperNode per client (``flower-supernode``,
each told where its own data file is), then submits a Flower app with ``flwr run`` and
waits for it, within a time limit. The app (`apps`) is a ServerApp that sends the global
weights to every node each round and averages the replies with `labkit.labs.federated.average`,
and a ClientApp that trains with `labkit.labs.federated.client_update`: the same code and seeds
as the in-process `labkit.labs.federated.fedavg`. Every process is stopped when the run ends or
fails; their logs stay in the run folder. Across machines the same app runs unchanged: start
the SuperLink on a server, each SuperNode on its owner's machine with ``--superlink
<server>:<port>``, and point ``flwr run`` at the SuperLink (`run`'s ``logs`` show the
commands).
Leaves out: TLS and node authentication (Flower has both), and Flower's simulation engine.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from labkit.core import cache, procs
from labkit.core.env import release_memory
from labkit.labs.federated import check_parts, check_rows

APP = "labkit_flower_app"  # the module `flwr run` loads; it only asks labkit for the two apps


def _command(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"`{name}` not found: Flower is not installed in this environment. "
                                "Install the course again (`python scripts/install.py`), which "
                                "installs flwr.")
    return found


def _stop(running, ports=()) -> None:
    """Stop every process group (`procs.stop`), then any process still naming one of our
    ``ports`` (the SuperExecs, which Flower starts detached, outside the groups)."""
    procs.stop(running, grace=5)
    try:
        import psutil
    except ImportError:  # the SuperExecs stop by themselves when their parent has gone
        return
    names = [f"127.0.0.1:{port}" for port in ports]
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(n in " ".join(p.info["cmdline"] or ()) for n in names):
                p.kill()
        except psutil.Error:
            pass


def _write_app(folder: Path, config: dict) -> None:
    lines = [f"{k} = {json.dumps(v)}" for k, v in config.items()]
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "labkit-fedavg"\nversion = "1.0.0"\n'
        'description = "labkit lab 07: FedAvg of a head on MiniLM features"\nlicense = "MIT"\n'
        'dependencies = []\n\n[tool.hatch.build.targets.wheel]\npackages = ["."]\n\n'
        '[tool.flwr.app]\npublisher = "labkit"\n\n[tool.flwr.app.components]\n'
        f'serverapp = "{APP}:serverapp"\nclientapp = "{APP}:clientapp"\n\n'
        "[tool.flwr.app.config]\n" + "\n".join(lines) + "\n")
    (folder / f"{APP}.py").write_text('"""labkit lab 07: the Flower apps live in labkit.labs.federated.flower."""\n'
                                      "from labkit.labs.federated.flower import apps\n\n_apps = apps()\n"
                                      "serverapp = _apps[0]\nclientapp = _apps[1]\n")


def run(x, y, parts, x_test, y_test, rounds: int, lr: float, local_epochs: int = 1,
        batch_size: int = 32, hidden: int = 0, seed: int = 0, timeout: float = 240.0,
        one_at_a_time: bool = False, force: bool = False, classes: int | None = None) -> dict:
    """FedAvg of a `labkit.labs.federated.Head` on a real Flower federation: a SuperLink and one
    SuperNode per client in ``parts`` (row indices into ``x``, ``y``), every node in every
    round, ``rounds`` rounds. ``one_at_a_time``: the ServerApp asks the nodes one after
    another, so that one ClientApp process (torch and all, ~0.3 GB) runs at a time: on one
    small machine that keeps three nodes within Binder's 2 GB; across machines a server asks
    all at once (the result is the same: each client's update depends only on the global
    weights). Returns {"accuracy": test accuracy per round, "wall_s",
    "folder": where the logs are, "commands"}. The whole run (start-up included) must end
    within ``timeout`` seconds; every process is stopped either way. Cached like every run
    (``force`` runs it again). ``classes``: how many (None: 2); the labels and every client's
    rows are checked before any process starts."""
    x, y, x_test, y_test, k = check_rows(x, y, x_test, y_test, classes)
    return _federation(x, y, check_parts(parts, len(y)), x_test, y_test,
                       rounds, lr, local_epochs, batch_size, hidden, seed, float(timeout), one_at_a_time, force, k)


@cache.keyed("flower", exclude=("force",))
def _federation(x, y, parts, x_test, y_test, rounds, lr, local_epochs, batch_size, hidden, seed, timeout,
                one_at_a_time, force, classes, *, folder) -> dict:
    """`run`'s federation, written into its run ``folder``."""
    settings = dict(rounds=rounds, lr=lr, local_epochs=local_epochs, batch_size=batch_size,
                    hidden=hidden, seed=seed, nodes=len(parts), timeout=timeout,
                    labels=classes, one_at_a_time=one_at_a_time)
    if cache.is_done(folder) and not force:
        return {**cache.read_json(folder / "result.json"), "folder": folder}
    with cache.artifact(folder, keep_failed=True) as (work, _):  # a failed run's logs: <folder>.failed
        (work / "app").mkdir(parents=True)
        for k, rows in enumerate(parts):
            cache.save_arrays(work / f"client{k}.safetensors", {"x": x[rows], "y": y[rows]})
        cache.save_arrays(work / "test.safetensors", {"x": np.asarray(x_test, np.float32), "y": np.asarray(y_test)})
        _write_app(work / "app", {**settings, "folder": str(work)})
        ports = procs.free_ports(1 + len(parts))  # the SuperLink's, then each SuperNode's runtime API
        port = ports[0]
        home = work / "flwr-home"
        home.mkdir()
        (home / "config.toml").write_text(f'[superlink]\ndefault = "labkit"\n\n[superlink.labkit]\n'
                                          f'address = "127.0.0.1:{port}"\ninsecure = true\n')
        bin_dir = str(Path(_command("flwr")).parent)  # the SuperLink and SuperNodes start more Flower commands
        env = {**os.environ, "FLWR_HOME": str(home), "PYTHONUNBUFFERED": "1",
               "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
               "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2",  # start each app 0.8 s sooner (default 1 s)
               "FLWR_TELEMETRY_ENABLED": "0"}  # Flower reports usage events by default: not from a course run
        commands = [[_command("flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
                     "--host", "127.0.0.1", "--port", str(port)]]
        for k in range(len(parts)):
            commands.append([_command("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                             "--host", "127.0.0.1", "--port", str(ports[k + 1]), "--max-retries", "10",
                             "--node-config", f'partition-id={k} data="{work / f"client{k}.safetensors"}"'])
        release_memory()  # hand the notebook's freed heap back before the processes start
        running, start = [], time.monotonic()
        try:
            for i, cmd in enumerate(commands):
                log = work / ("superlink.log" if i == 0 else f"supernode{i - 1}.log")
                running.append(procs.spawn(cmd, log, env=env, cwd=work))
                if i == 0:
                    procs.wait_until(lambda: procs.port_open(port), running[0], 60, log, "the Flower SuperLink")
            left = timeout - (time.monotonic() - start)
            with (work / "flwr-run.log").open("w") as out:
                done = subprocess.run([_command("flwr"), "run", str(work / "app"), "labkit", "--stream"], env=env,
                                      stdout=out, stderr=subprocess.STDOUT, timeout=max(1.0, left), cwd=work)
            if not (work / "result.json").exists():
                raise RuntimeError(f"`flwr run` ended (exit {done.returncode}) without a result:\n"
                                   f"{procs.tail(work / 'flwr-run.log')}\n-- superlink:\n"
                                   f"{procs.tail(work / 'superlink.log')}")
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the Flower federation did not finish within {timeout:.0f} s; "
                               f"logs in {folder}.failed") from None
        finally:
            _stop(running, ports)
        result = json.loads((work / "result.json").read_text())
        result.update(wall_s=round(time.monotonic() - start, 1),  # the commands as they read once in place
                      commands=[" ".join(c).replace(str(work), str(folder)) for c in commands])
        (work / "result.json").write_text(json.dumps(result, indent=1))
    return {**result, "folder": folder}


def apps():
    """(ServerApp, ClientApp) of the federation `run` starts (imported by the app module)."""
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from safetensors.numpy import load_file

    from labkit.labs.federated import Head, average, client_update, head_accuracy, one_thread, weights

    serverapp, clientapp = ServerApp(), ClientApp()

    @serverapp.main()
    def server(grid: Grid, context: Context) -> None:
        cfg = context.run_config
        folder = Path(cfg["folder"])
        test = load_file(str(folder / "test.safetensors"))
        end = time.monotonic() + 60
        while len(list(grid.get_node_ids())) < cfg["nodes"]:  # wait for every SuperNode
            if time.monotonic() > end:
                raise TimeoutError(f"only {len(list(grid.get_node_ids()))} of {cfg['nodes']} nodes joined")
            time.sleep(0.5)
        torch.manual_seed(cfg["seed"])
        model = Head(test["x"].shape[1], cfg["hidden"], cfg["labels"])
        state, accs, seconds = weights(model), [], []
        for r in range(cfg["rounds"]):
            t0 = time.monotonic()
            msgs = [Message(RecordDict({"arrays": ArrayRecord(state), "config": ConfigRecord({"round": r})}),
                            dst_node_id=node, message_type="train") for node in sorted(grid.get_node_ids())]
            groups = [[m] for m in msgs] if cfg["one_at_a_time"] else [msgs]  # see `run`
            replies = [m for g in groups for m in grid.send_and_receive(g, timeout=cfg["timeout"]) if m.has_content()]
            if len(replies) < cfg["nodes"]:
                raise RuntimeError(f"round {r}: {len(replies)} of {cfg['nodes']} nodes replied")
            replies.sort(key=lambda m: m.content["metrics"]["partition-id"])  # the in-process order
            state = average([m.content["arrays"].to_torch_state_dict() for m in replies],
                            [m.content["metrics"]["num-examples"] for m in replies])
            model.load_state_dict(state)
            accs.append(head_accuracy(model, test["x"], test["y"]))
            seconds.append(round(time.monotonic() - t0, 2))
        cache.write_json(folder / "result.json", {"accuracy": accs, "round_seconds": seconds})

    @clientapp.train()
    def client(msg: Message, context: Context) -> Message:
        cfg, k = context.run_config, int(context.node_config["partition-id"])
        data = load_file(str(context.node_config["data"]))  # this node's own reviews, never sent
        r = int(msg.content["config"]["round"])
        model = Head(data["x"].shape[1], cfg["hidden"], cfg["labels"])
        with one_thread():
            new = client_update(model, msg.content["arrays"].to_torch_state_dict(), data["x"], data["y"],
                                cfg["local_epochs"], cfg["lr"], cfg["batch_size"],
                                cfg["seed"] * 100_000 + r * 1000 + k)
        return Message(RecordDict({"arrays": ArrayRecord(new),
                                   "metrics": MetricRecord({"num-examples": len(data["y"]), "partition-id": k})}),
                       reply_to=msg)

    return serverapp, clientapp
