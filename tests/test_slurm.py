"""table1.sbatch under a real SLURM: a one-node cluster (munge, slurmctld, slurmd) started here, an
array of two tiny Table 1 cells run to the end, one of them signalled mid-run, requeued, and ending
bit-identical to an uninterrupted run; with TRAIN_FLAGS a trial, so nothing is shipped. About three
minutes, two of them SLURM's wait before a requeued task may start again.

Needs root and Debian's slurmctld, slurmd, slurm-client and munge (.ci/run installs them where
missing). Outside CI the test is skipped where they are missing; in CI it fails."""
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
TRAIN_FLAGS = "--subset 2100 --hidden 16 --z-dim 4 --epochs 8 --eval-every 1"
CELLS = "--models m1m2 --labels 100 --seeds 0 1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A copy of the repository (code, data, the shipped M1; no M2 weights) and a one-node SLURM
    cluster serving it; returns (copy, environment for SLURM's commands)."""
    missing = [d for d in DAEMONS if not shutil.which(d)]
    if missing or os.geteuid() != 0:
        reason = f"needs root and SLURM ({', '.join(missing) or 'not root'})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("slurm")
    repo = base / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", ".venv", "temp", "tests", "docs", "M2",
                                                              "__pycache__", ".pytest_cache"))
    for folder in ("temp", "docs", "weights/M2"):
        (repo / folder).mkdir(parents=True, exist_ok=True)
    state = base / "state"
    for folder in ("state", "spool", "log"):
        (state / folder).mkdir(parents=True)
    key = state / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    socket_path = state / "munge.socket"
    host = socket.gethostname().split(".")[0]
    conf = state / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=table1test", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}", "AuthType=auth/munge",
        f"AuthInfo=socket={socket_path}", "CredType=cred/munge", f"StateSaveLocation={state}/state",
        f"SlurmdSpoolDir={state}/spool", f"SlurmctldPidFile={state}/slurmctld.pid",
        f"SlurmdPidFile={state}/slurmd.pid", f"SlurmctldLogFile={state}/log/slurmctld.log",
        f"SlurmdLogFile={state}/log/slurmd.log", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "MpiDefault=none", "ReturnToService=2",
        f"NodeName={host} CPUs={os.cpu_count()} State=UNKNOWN",
        "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    env = dict(os.environ, SLURM_CONF=str(conf), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(["munged", "--force", f"--key-file={key}", f"--socket={socket_path}",
                    f"--pid-file={state}/munged.pid", f"--log-file={state}/log/munged.log",
                    f"--seed-file={state}/munged.seed"], check=True)
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True)
        subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True)
        wait_until(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                                                    text=True).stdout, "the node to be idle", 60)
        yield repo, env
    finally:
        subprocess.run(["scancel", "--full", "--user=root"], env=env)
        for daemon in ("slurmd", "slurmctld"):
            pid = state / f"{daemon}.pid"
            if pid.exists():
                subprocess.run(["kill", pid.read_text().strip()])
        subprocess.run(["munged", "--stop", f"--socket={socket_path}"])


def squeue(env, job):
    return subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%i %T %r"], env=env, capture_output=True,
                          text=True).stdout.split("\n")


def test_an_array_of_two_cells_runs_a_signalled_task_is_requeued_and_a_trial_ships_nothing(cluster):
    repo, env = cluster
    env = dict(env, TABLE1_FLAGS=CELLS, TRAIN_FLAGS=TRAIN_FLAGS, PYTHON=sys.executable)
    job = subprocess.run(["sbatch", "--parsable", "--array=0-1", "table1.sbatch"], cwd=repo, env=env,
                         capture_output=True, text=True, check=True).stdout.strip().split(";")[0]
    log = repo / "temp" / "M2" / "m1m2_labels100_seed1" / "train.log"
    wait_until(lambda: log.exists() and "epoch    2 |" in log.read_text(), "task 1 to reach epoch 2")
    subprocess.run(["scancel", "--signal=TERM", "--batch", f"{job}_1"], env=env, check=True)
    wait_until(lambda: "stopped by SIGTERM" in log.read_text(), "task 1 to stop")
    # SLURM makes a requeued task eligible again two minutes later (an earlier start can find the
    # node still ending its first run and fail); the test waits for it like any task would.
    output = repo / "temp" / f"slurm-table1-{job}_1.out"
    wait_until(lambda: "exit 0" in output.read_text(), "task 1 to run again and end", 420)
    wait_until(lambda: not any(line.strip() for line in squeue(env, job)), "the array to end", 60)

    text = log.read_text()
    assert "stopped by SIGTERM at epoch" in text and "resumed" in text and text.rstrip().splitlines()[-1].startswith("done:")
    output = output.read_text()
    assert "start 0:" in output and "exit 143" in output and "start 1:" in output and "exit 0" in output
    straight = repo / "temp" / "straight"
    command = (f"train_M2.py -train --model m1m2 --labels 100 --seed 1 --recipe fast --threads 1 {TRAIN_FLAGS} "
               f"--out {straight} --weights {straight}/m2.npz").split()
    subprocess.run([sys.executable, *command], cwd=repo, env=env, check=True, capture_output=True)
    trial = repo / "temp" / "M2" / "m1m2_labels100_seed1" / "m1m2_labels100_seed1.npz"
    with np.load(trial) as a, np.load(straight / "m2.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    # TRAIN_FLAGS make the cells trials: both ran, and neither replaced what weights/ ships.
    assert (repo / "temp" / "M2" / "m1m2_labels100_seed0" / "m1m2_labels100_seed0.json").exists()
    assert not list((repo / "weights" / "M2").iterdir())
