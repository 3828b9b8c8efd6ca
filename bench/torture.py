"""Crash torture: run a TPC-B load, kill the whole cluster at a random moment,
simulate a power cut, restart, and check that nothing acknowledged was lost and
nothing unacknowledged is half there.

    python bench/torture.py [--runs 20] [--scale 1] [--seed S0] [--clients 4]
                            [--min-load 1] [--max-load 4] [--fault SPEC]
                            [--checkpoint-before-kill] [--no-checkpoint]
                            [--set NAME=VALUE ...] [--keep DIR] [--max-failures N] [--json]

Each run (seed S0 + i, so ``--seed SEED --runs 1`` replays run i's kill time,
kill mode, transaction contents and power-loss seed; the interleaving of the
client threads is the machine's):

1. copies a scale-S cluster initialised once (``tusk_ctl init --wal-segsize 1
   -k``, pgbench -i, history with a txn column and primary key), and starts it
   with ``debug_power_loss = on`` (and ``debug_fault_injection = SPEC`` with
   --fault) and a small max_wal_size and shared_buffers, so checkpoints, WAL
   segment switches and buffer evictions happen every second or so;
2. runs bench/torture_load.py: numbered TPC-B transactions from --clients
   connections (5% rolled back on purpose), and on another connection VACUUM,
   CREATE TABLE + INSERT, DROP TABLE, CHECKPOINT and pg_switch_wal();
3. after a seeded random time kills every process of the cluster with SIGKILL
   at one instant — a quarter of the runs just after issuing CHECKPOINT (so
   mostly during it), a quarter just after pg_switch_wal(); with
   --checkpoint-before-kill it instead stops the load, waits for a CHECKPOINT to
   complete, then kills (the bite tests: the data writes are then durable only
   through the checkpointer's fsyncs);
4. ``tusk_ctl simulate-power-loss --seed`` drops, keeps or tears the writes no
   fsync covered (skipped, with a warning, if this tusk has no such verb);
5. restarts and checks (bench/torture_check.py): recovery succeeds; every
   acknowledged commit is present with its content; nothing rolled back or
   never committed is present; every account, teller and branch balance equals
   its history rows' deltas and the TPC-B sums agree; side tables match their
   acknowledged DDL; index lookups agree with sequential scans; then a clean
   stop and ``tusk_ctl verify`` without problems.

Prints one line per run and a summary: runs, crashes, commits checked,
failures with their seeds. Exit 1 if any run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.torture_check import check_history, check_indexes, check_sides, fates  # noqa: E402
from bench.torture_load import ACKED, UNKNOWN, Load  # noqa: E402
from tests.cluster import TUSK_CTL, Cluster, free_port  # noqa: E402

# Small enough that a second of load crosses WAL segments (1 MB), triggers
# checkpoints (max_wal_size) and makes backends and the bgwriter evict dirty
# buffers; checkpoint_timeout is its minimum.
SERVER_SETTINGS: dict[str, object] = {
    "max_wal_size": "4MB", "min_wal_size": "2MB", "checkpoint_timeout": "30s",
    "shared_buffers": "2MB", "log_checkpoints": True,
}


@dataclass
class Options:
    runs: int = 20
    scale: int = 1
    seed: int = 0
    clients: int = 4
    min_load: float = 1.0
    max_load: float = 4.0
    fault: str = ""
    checkpoint_before_kill: bool = False
    checkpoints: bool = True  # False: no CHECKPOINT from the load or the kill plan
    settings: dict[str, str] = field(default_factory=dict)  # more server settings
    keep: str = ""
    max_failures: int = 0  # stop after this many failed runs (0: never)
    verbose: bool = True


@dataclass
class RunResult:
    run: int
    seed: int
    kill_mode: str = ""
    load_seconds: float = 0.0
    crashed: bool = False
    during_checkpoint: bool = False
    acked: int = 0
    unknown: int = 0
    absent: int = 0
    maintenance: int = 0
    power_loss: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase


@dataclass
class Summary:
    runs: int = 0
    crashes: int = 0
    kills_during_checkpoint: int = 0
    commits_checked: int = 0
    unknown_commits: int = 0
    power_loss_simulated: bool = False
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    results: list[RunResult] = field(default_factory=list)


class _Lap:
    """Records the seconds each phase of a run took (RunResult.phases)."""

    def __init__(self, res: RunResult) -> None:
        self.res = res
        self.last = time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        self.res.phases[phase] = round(now - self.last, 3)
        self.last = now


def has_power_loss() -> bool:
    """Whether this tusk has ``tusk_ctl simulate-power-loss`` (issue 7)."""
    r = subprocess.run([TUSK_CTL, "simulate-power-loss", "--help"], capture_output=True)
    return r.returncode == 0


def build_template(workdir: Path, scale: int, registry: Path | None = None) -> Path:
    """A stopped scale-S TPC-B cluster to copy for each run."""
    datadir = workdir / "template"
    subprocess.run([TUSK_CTL, "init", "-D", str(datadir), "--wal-segsize", "1", "-k"],
                   check=True, capture_output=True)
    cluster = Cluster(datadir, free_port(), registry=registry)
    try:
        cluster.start()
        r = subprocess.run(["pgbench", "-h", cluster.host, "-p", str(cluster.port), "-U",
                            cluster.user, "-i", "-s", str(scale), "-q", "postgres"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"pgbench -i failed:\n{r.stderr}")
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            # The history row carries its transaction's number.
            conn.execute("DROP TABLE pgbench_history")
            conn.execute("CREATE TABLE pgbench_history (txn bigint PRIMARY KEY, tid int, "
                         "bid int, aid int, delta int, mtime timestamp, filler char(22))")
        if cluster.stop("fast") != 0:
            raise RuntimeError("template cluster did not stop cleanly")
    finally:
        cluster.teardown()
    # Each run's Cluster appends its own port and socket directory.
    cluster.set_conf(SERVER_SETTINGS)
    (datadir / "server.log").unlink(missing_ok=True)
    return datadir


def _wait_group_gone(pgid: int, timeout: float = 10) -> None:
    """Until no live process of the process group remains: a killed process in
    the middle of a write must be gone before the power cut is simulated."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = False
        for p in psutil.process_iter(["status"]):
            try:
                if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                    alive = True
                    break
            except (psutil.Error, ProcessLookupError):
                pass
        if not alive:
            return
        time.sleep(0.01)
    raise TimeoutError(f"processes of group {pgid} survived SIGKILL")


def _checkpoint_in_progress(log: str) -> bool:
    """Whether the log's last checkpoint started and never completed."""
    return log.rfind("checkpoint starting:") > log.rfind("checkpoint complete:")


def _kill_plan(rng: random.Random, opts: Options) -> tuple[str, float, float]:
    """(mode, seconds of load before it, delay between its trigger and the kill)."""
    load = rng.uniform(opts.min_load, opts.max_load)
    if opts.checkpoint_before_kill:
        return "after-checkpoint", load, 0.0
    mode = rng.choice(("random", "random", "checkpoint", "switch") if opts.checkpoints
                      else ("random", "random", "switch"))
    delay = {"random": 0.0, "checkpoint": rng.uniform(0.0, 0.3),
             "switch": rng.uniform(0.0, 0.05)}[mode]
    return mode, load, delay


def _run_with_timeout(dsn: str, sql: str, timeout: float) -> bool:
    """Run ``sql``; False if it has not returned after ``timeout`` seconds."""
    done = threading.Event()

    def run() -> None:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return done.is_set()


def _stacks(cluster: Cluster, rundir: Path) -> str:
    """Python stacks of every process of a hung cluster (py-spy), saved beside the run."""
    if not shutil.which("py-spy"):
        return ""
    dumps = []
    for p in [psutil.Process(cluster.pid), *cluster.children()]:
        r = subprocess.run(["py-spy", "dump", "--pid", str(p.pid)], capture_output=True,
                           text=True, timeout=60)
        dumps.append(r.stdout + r.stderr)
    (rundir / "hang-stacks.txt").write_text("\n".join(dumps))
    return f" (stacks in {rundir / 'hang-stacks.txt'}, kept with --keep)"


def _trigger(dsn: str, sql: str) -> None:
    """Issue CHECKPOINT or pg_switch_wal() and return at once (the kill follows)."""
    def run() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql)
        except psycopg.Error:
            pass  # killed under it, as intended

    threading.Thread(target=run, daemon=True).start()


def run_one(run: int, seed: int, template: Path, workdir: Path, opts: Options,
            power_loss: bool, registry: Path | None = None) -> RunResult:
    res = RunResult(run=run, seed=seed)
    t0 = time.monotonic()
    lap = _Lap(res)
    rng = random.Random(seed)
    rundir = workdir / f"run-{seed}"
    datadir = rundir / "data"
    shutil.copytree(template, datadir, symlinks=True)
    os.chmod(datadir, 0o700)
    cluster = Cluster(datadir, free_port(), registry=registry)
    args = ["-c", "debug_power_loss=on"] if power_loss else []
    if opts.fault:
        args += ["-c", f"debug_fault_injection={opts.fault}"]
    for name, value in opts.settings.items():
        args += ["-c", f"{name}={value}"]
    lap("copy")
    try:
        cluster.start(*args)
        lap("start")
        mode, res.load_seconds, delay = _kill_plan(rng, opts)
        res.kill_mode = mode
        load = Load(cluster.dsn, seed, opts.scale, clients=opts.clients,
                    checkpoints=opts.checkpoints)
        load.start()
        time.sleep(res.load_seconds)
        if mode == "after-checkpoint":
            # A server that cannot finish a transaction or a checkpoint within a
            # minute is hung (a deadlock between processes): a failure in itself.
            if not load.stop(timeout=60):
                res.failures.append("hang: a client's transaction did not finish within 60 s"
                                    + _stacks(cluster, rundir))
            elif not _run_with_timeout(cluster.dsn, "CHECKPOINT", 60):
                res.failures.append("hang: CHECKPOINT did not complete within 60 s"
                                    + _stacks(cluster, rundir))
        elif mode != "random":
            _trigger(cluster.dsn, "CHECKPOINT" if mode == "checkpoint"
                     else "SELECT pg_switch_wal()")
            time.sleep(delay)
        # The whole cluster at one instant, as a power cut would stop it.
        os.killpg(cluster.pid, signal.SIGKILL)
        res.crashed = True
        cluster.proc.wait(10)
        _wait_group_gone(cluster.pid)
        lap("load")
        res.during_checkpoint = _checkpoint_in_progress(cluster.log_text())
        load.stop()
        record = load.record
        counts = fates(record)
        res.acked, res.unknown, res.absent = counts[ACKED], counts[UNKNOWN], counts["absent"]
        res.maintenance = len(record.maintenance)
        res.failures += [f"client error: {e}" for e in record.errors]
        if power_loss:
            res.power_loss = _simulate_power_loss(datadir, rng.randrange(2**31), res)
            lap("power_loss")
        res.failures += _restart_and_check(cluster, record, opts, res, lap)
    except Exception as exc:  # noqa: BLE001 - a harness error is a failed run, not a crash
        res.failures.append(f"harness error: {type(exc).__name__}: {exc}")
    finally:
        cluster.teardown()
    res.seconds = time.monotonic() - t0
    if res.failures and opts.keep:
        dest = Path(opts.keep) / f"run-{seed}"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(rundir, dest, symlinks=True)
    shutil.rmtree(rundir, ignore_errors=True)
    return res


def _simulate_power_loss(datadir: Path, seed: int, res: RunResult) -> dict:
    r = subprocess.run([TUSK_CTL, "simulate-power-loss", "-D", str(datadir), "--seed",
                        str(seed), "--json"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        res.failures.append(f"simulate-power-loss failed ({r.returncode}): {r.stderr.strip()}")
        return {}
    try:
        out = json.loads(r.stdout)
    except json.JSONDecodeError:
        out = {"output": r.stdout.strip()}
    return {"seed": seed, **out} if isinstance(out, dict) else {"seed": seed, "summary": out}


def _log_gist(log: str) -> str:
    """The lines of a failed start that say why: FATAL/PANIC, the exception."""
    lines = [ln.strip() for ln in log.splitlines()]
    keep = [ln for ln in lines if " FATAL: " in ln or " PANIC: " in ln or "redo " in ln
            or (ln and not ln.startswith(("File ", "^", "20")) and "Error" in ln)]
    return " | ".join(keep[-6:]) or " | ".join(lines[-3:])


def _restart_and_check(cluster: Cluster, record, opts: Options, res: RunResult,
                       lap: _Lap) -> list[str]:
    log_start = len(cluster.log_text())
    try:
        cluster.start(timeout=120)
    except (RuntimeError, TimeoutError):
        return ["recovery failed: " + _log_gist(cluster.log_text()[log_start:])]
    lap("recovery")
    failures: list[str] = []
    try:
        with psycopg.connect(cluster.dsn, autocommit=True, connect_timeout=10) as conn:
            history_failures, present, accounts = check_history(conn, record, opts.scale)
            failures += history_failures
            failures += check_sides(conn, record)
            failures += check_indexes(conn, present, accounts, random.Random(res.seed))
    except psycopg.Error as exc:
        # An error reading the recovered data (XX001 invalid page, ...) is a finding.
        failures.append(f"check query failed: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0]}")
    lap("check")
    code = cluster.stop("fast", timeout=120)
    lap("stop")
    if code != 0:
        failures.append(f"server did not stop cleanly (exit {code}): "
                        + cluster.log_text()[log_start:][-2000:])
        return failures
    r = subprocess.run([TUSK_CTL, "verify", "-D", str(cluster.datadir), "--json"],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        try:
            problems = json.loads(r.stdout)["problems"]
        except (json.JSONDecodeError, KeyError, TypeError):
            problems = [r.stdout.strip() or r.stderr.strip()]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        failures.append(f"tusk_ctl verify: {'; '.join(problems[:5])}{more}")
    lap("verify")
    return failures


def run_torture(opts: Options, template: Path | None = None, workdir: Path | None = None,
                registry: Path | None = None) -> Summary:
    """The torture loop; a prebuilt template (build_template) may be shared."""
    t0 = time.monotonic()
    own_work = workdir is None
    work = Path(tempfile.mkdtemp(prefix="tusk-torture-")) if workdir is None else workdir
    summary = Summary(power_loss_simulated=has_power_loss())
    say = print if opts.verbose else (lambda *a, **k: None)
    if not summary.power_loss_simulated:
        say("WARNING: tusk_ctl has no simulate-power-loss: runs kill -9 only", file=sys.stderr)
    try:
        if template is None:
            template = build_template(work, opts.scale, registry)
        for i in range(opts.runs):
            seed = opts.seed + i
            res = run_one(i + 1, seed, template, work, opts, summary.power_loss_simulated,
                          registry)
            summary.results.append(res)
            summary.runs += 1
            summary.crashes += res.crashed
            summary.kills_during_checkpoint += res.during_checkpoint
            summary.commits_checked += res.acked
            summary.unknown_commits += res.unknown
            status = "FAILED" if res.failures else "ok"
            say(f"run {res.run:3d} seed {seed}: {res.kill_mode:16s} after {res.load_seconds:4.1f}s"
                f"{' (in checkpoint)' if res.during_checkpoint else '':16s} acked {res.acked:5d}"
                f" unknown {res.unknown:2d}  {res.seconds:5.1f}s  {status}", flush=True)
            for f in res.failures:
                say(f"    {f}", flush=True)
            if res.failures:
                summary.failures.append({"run": res.run, "seed": seed,
                                         "failures": res.failures})
                if opts.max_failures and len(summary.failures) >= opts.max_failures:
                    break
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    summary.seconds = time.monotonic() - t0
    return summary


def format_summary(s: Summary, opts: Options) -> str:
    lines = [f"runs: {s.runs}  crashes: {s.crashes} ({s.kills_during_checkpoint} during a "
             f"checkpoint)  commits checked: {s.commits_checked} (+{s.unknown_commits} in "
             f"flight)  failures: {len(s.failures)}  time: {s.seconds:.0f}s",
             f"power loss simulated: {'yes' if s.power_loss_simulated else 'no'}"
             + (f"  fault injection: {opts.fault}" if opts.fault else "")]
    for f in s.failures:
        lines.append(f"FAILED run {f['run']} seed {f['seed']} (replay: python bench/torture.py "
                     f"{replay_args(opts, f['seed'])})")
        lines += [f"    {m}" for m in f["failures"]]
    return "\n".join(lines)


def replay_args(opts: Options, seed: int) -> str:
    """The command-line options that rerun one round."""
    d = Options()
    out = [f"--seed {seed} --runs 1"]
    for flag, value, default in (("--scale", opts.scale, d.scale),
                                 ("--clients", opts.clients, d.clients),
                                 ("--min-load", opts.min_load, d.min_load),
                                 ("--max-load", opts.max_load, d.max_load),
                                 ("--fault", opts.fault, d.fault)):
        if value != default:
            out.append(f"{flag} {shlex.quote(str(value))}")
    if opts.checkpoint_before_kill:
        out.append("--checkpoint-before-kill")
    if not opts.checkpoints:
        out.append("--no-checkpoint")
    out += [f"--set {shlex.quote(f'{k}={v}')}" for k, v in opts.settings.items()]
    return " ".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--seed", type=int, default=None, help="seed of run 1 (default: random)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--min-load", type=float, default=1.0, help="seconds of load, at least")
    ap.add_argument("--max-load", type=float, default=4.0, help="seconds of load, at most")
    ap.add_argument("--fault", default="", help="debug_fault_injection for the crashed life")
    ap.add_argument("--checkpoint-before-kill", action="store_true",
                    help="stop the load and complete a CHECKPOINT before each kill")
    ap.add_argument("--no-checkpoint", action="store_true",
                    help="issue no CHECKPOINT (with --set max_wal_size=1GB: none at all)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a server setting for the crashed life (repeatable)")
    ap.add_argument("--keep", default="", help="copy failed runs' directories here")
    ap.add_argument("--max-failures", type=int, default=0,
                    help="stop after this many failed runs (default: never)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = ap.parse_args(argv)
    opts = Options(runs=a.runs, scale=a.scale,
                   seed=a.seed if a.seed is not None else random.randrange(10**6),
                   clients=a.clients, min_load=a.min_load, max_load=a.max_load, fault=a.fault,
                   checkpoint_before_kill=a.checkpoint_before_kill, keep=a.keep,
                   max_failures=a.max_failures, checkpoints=not a.no_checkpoint,
                   settings=dict(kv.split("=", 1) for kv in a.set),
                   verbose=not a.json)
    summary = run_torture(opts)
    if a.json:
        print(json.dumps(asdict(summary), indent=1))
    else:
        print(format_summary(summary, opts))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
