"""Scale-out: one sequencer worker, then two, drain the same backlog on a cluster of their own.

    python -m benchmarks.bench_scaleout [--brokers 3 1] [--workers 1 2] [--services 1500] [--partitions 12]
                                        [--no-warm-up] [--work-dir DIR]

Issue 20, target 4: two workers on a 3-broker cluster drain >= 1.6x what one drains. For each
`--brokers` count the run starts a KRaft cluster of its own (deploy/local/kafka.py `kafka_cluster`:
fresh ports, its state in a temporary directory, stopped at the end, failed or not; 3 brokers: every
topic with 3 replicas and min.insync.replicas 2, 1 broker: 1 replica). Then, for each `--workers`
count, under a fresh topic prefix (its own consumer group and state, deleted afterwards):

0. (`--warm-up`, the default) one drain with one worker, not counted: the brokers' JVMs are fresh and
   compile as they go, and the first drain on a new cluster was the slowest (3 brokers, 2 workers
   three times in a row: 325, 571, 550 events/s), which would flatter whatever ran second. One
   warm-up is not all of it (the second one-worker drain of `--workers 1 2 1 2` was still 1.2-1.7x
   the first): repeat the counts, and read the later pair too;
1. the topics and the shipyard; `N` worker processes (the sequencer on the loop host, as
   bench_sequencer starts it), and a wait until the group is settled (every worker logged its share
   of the `events` partitions, together all of them, none twice);
2. the backlog of bench_sequencer (the triggers and connector replies of `--services` sequences,
   computed by the in-memory driver, the same records for every drain) published to `events`;
3. the CPU time, read from /proc, of the brokers and the workers over 5 s with nothing to read (what
   they cost idle: heartbeats, the controllers' quorum, the loop's ticks);
4. the drain rate: backlog events over the span from the first to the last transition the workers
   audit (as bench_sequencer's throughput), and the CPU time that the brokers, the workers, this
   process (the publisher) and everything else on the machine took from the moment the backlog was
   published until the group had committed all of it.

The workers start before the backlog is published because the loop's group rebalances eagerly: a
worker joining a group that is already draining would stop the others for the rebalance, and the
figure would depend on which one started first. Publishing (one aiokafka producer, ~1 s of CPU)
overlaps the first moments of each drain, the same way in every run.

The CPU accounting says what the machine allows: the CPU time the brokers and the workers spend per
event above their idle cost is about fixed, so `(cores - idle cores) / (CPU per event)` is the most
any number of workers can drain on this machine (nothing else running, the publisher not counted);
the report prints it beside the one-worker rate. "others" is everything else on the machine in the
same window (other sessions' tests, load generators): when it is large, the figures are the share
the benchmark got, not what the machine allows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_sequencer import (
    READ_BACK,
    TASKS,
    THROUGHPUT_PROJECT,
    BenchError,
    backlog,
    drained,
    publish_shipyard,
    send_all,
    shipyard_text,
    start_worker,
    stop_worker,
    transition_times,
)
from deploy.local.kafka import KafkaCluster, kafka_cluster
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.codec import KafkaRecord, encode
from tidegate.streams.kafka import delete_topics, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import SEQUENCER_STATE, TopicRegistry

TARGET = 1.6  # two workers' rate / one worker's, on 3 brokers (issue 20, target 4)
SETTLE_WAIT = 180.0  # seconds the workers may take to start and share the partitions out
DRAIN_WAIT = 600.0  # seconds a drain may take (a loaded machine)
IDLE_SECONDS = 5.0  # seconds of idle CPU measured before each drain (what the processes cost doing nothing)
POLL = 0.25  # seconds between checks of the group's committed offsets
TICKS = os.sysconf("SC_CLK_TCK")


# --- CPU accounting (/proc) ---------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used so far: /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15 of stat(5)


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat: all but idle, iowait)."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    guest = sum(values[8:10])  # guest time is already counted in user time
    return (sum(values) - values[3] - values[4] - guest) / TICKS


@dataclass(frozen=True, slots=True)
class CpuSample:
    at: float  # monotonic seconds
    brokers: float
    workers: float
    bench: float
    machine: float

    @classmethod
    def take(cls, brokers: Sequence[int], workers: Sequence[int]) -> CpuSample:
        return cls(time.monotonic(), sum(map(process_cpu, brokers)), sum(map(process_cpu, workers)),
                   process_cpu(os.getpid()), machine_busy())

    def __sub__(self, before: CpuSample) -> CpuSample:
        return CpuSample(self.at - before.at, self.brokers - before.brokers, self.workers - before.workers,
                         self.bench - before.bench, self.machine - before.machine)

    @property
    def others(self) -> float:
        """Everything else on the machine (other sessions' tests, load generators)."""
        return max(0.0, self.machine - self.brokers - self.workers - self.bench)


# --- pure figures --------------------------------------------------------------------------------------


def settled(assignments: Sequence[Sequence[int]], partitions: int) -> bool:
    """Whether the workers' latest assignments share all `partitions` out, none twice, none idle."""
    held = [number for assigned in assignments for number in assigned]
    return all(assignments) and len(held) == len(set(held)) == partitions and set(held) == set(range(partitions))


def latest_assignment(log_text: str) -> list[int]:
    """The `events` partitions a worker holds now: those of its last assignment line (eager rebalancing
    revokes everything first, so each line is the whole new assignment)."""
    found = READ_BACK.findall(log_text)
    return [int(n) for n in found[-1][0].split(",") if n.strip()] if found else []


@dataclass(frozen=True, slots=True)
class Drain:
    brokers: int
    workers: int
    events: int
    seconds: float  # first to last audited transition
    cpu: CpuSample  # deltas over the accounting window (publish -> all committed)
    idle: CpuSample  # deltas over IDLE_SECONDS just before it: the workers settled, nothing to read

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def cores(self, role: str, sample: CpuSample | None = None) -> float:
        """Cores `role` (workers, brokers, bench, others) kept busy over `sample` (default: the drain)."""
        sample = sample or self.cpu
        return float(getattr(sample, role)) / sample.at

    def per_event_ms(self, role: str) -> float:
        """CPU ms per event `role` spent above what it spends idle."""
        return (float(getattr(self.cpu, role)) - self.cores(role, self.idle) * self.cpu.at) / self.events * 1000

    @property
    def pipeline_ms(self) -> float:
        """CPU ms per event of the brokers and the workers together, above idle."""
        return self.per_event_ms("brokers") + self.per_event_ms("workers")

    def line(self, single: float | None) -> str:
        """`single`: the one-worker rate the ratio is taken to (the mean of the one-worker drains)."""
        ratio = self.rate / single if single is not None else 1.0
        busy = " ".join(f"{role} {self.cores(role):4.2f}" for role in ("workers", "brokers", "bench", "others"))
        return (f"   {self.workers} worker{'s' if self.workers > 1 else ' '} {self.rate:8,.0f} events/s {ratio:5.2f}x"
                f"  {self.seconds:6.1f} s | cores: {busy} | CPU ms/event above idle: workers "
                f"{self.per_event_ms('workers'):5.2f} brokers {self.per_event_ms('brokers'):5.2f}")


def mean_rate(drains: Sequence[Drain], workers: int) -> float | None:
    rates = [d.rate for d in drains if d.workers == workers]
    return sum(rates) / len(rates) if rates else None


def allows(drains: Sequence[Drain], cores: int) -> list[str]:
    """The ratio (means over repeated drains) and what the machine allows: the CPU ceiling of the
    brokers and workers (from the drains with the most workers), beside the one-worker rate."""
    single_rate = mean_rate(drains, 1)
    most_workers = max(d.workers for d in drains)
    most = [d for d in drains if d.workers == most_workers]
    lines = []
    if single_rate is not None and most_workers > 1:
        ratio = (mean_rate(drains, most_workers) or 0.0) / single_rate
        verdict = "meets" if ratio >= TARGET else "MISSES"
        if drains[0].brokers < 3:
            verdict = f"{verdict}; the target is set for 3 brokers"
        means = " (means of the repeated drains)" if len(most) > 1 else ""
        lines.append(f"   ratio {most_workers} workers / 1: {ratio:.2f}{means}   (target >= {TARGET}: {verdict})")
    idle_brokers = sum(d.cores("brokers", d.idle) for d in most) / len(most)
    idle_workers = sum(d.cores("workers", d.idle) for d in most) / len(most)
    pipeline_ms = sum(d.pipeline_ms for d in most) / len(most)
    ceiling = (cores - idle_brokers - idle_workers) * 1000 / pipeline_ms if pipeline_ms > 0 else math.inf
    lines.append(
        f"   this machine ({cores} cores): idle, the brokers keep {idle_brokers:.2f} cores busy and the workers "
        f"{idle_workers:.2f}; above that, brokers + workers need {pipeline_ms:.2f} CPU ms per event "
        f"({most_workers} worker(s))")
    singles = [d for d in drains if d.workers == 1]
    lines.append(
        f"   so at most {ceiling:,.0f} events/s with the cores to themselves"
        + (f" = {ceiling / single_rate:.2f}x one worker's rate here" if single_rate is not None else "")
        + (f"; one worker kept {sum(d.cores('workers') for d in singles) / len(singles):.2f} cores busy, the brokers "
           f"{sum(d.cores('brokers') for d in singles) / len(singles):.2f}, everything else "
           f"{sum(d.cores('others') for d in singles) / len(singles):.2f}" if singles else ""))
    return lines


# --- one drain ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def workers_running(settings: Settings, count: int, work_dir: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for number in range(count):
            log_file = work_dir / f"worker-{number}.log"
            own = settings.model_copy(update={"data_dir": work_dir / f"faust-{number}"})
            started.append((start_worker(own, log_file), log_file))
        yield started
    finally:
        for process, _ in started:  # all at once: each leaving would rebalance the others
            if process.poll() is None:
                process.terminate()
        for process, _ in started:
            stop_worker(process)


def tails(workers: Sequence[tuple[subprocess.Popen[bytes], Path]], lines: int = 25) -> str:
    """Each worker's log from its first error on, else its last lines (the logs go with the temporary
    directory)."""
    shown = []
    for _, log in workers:
        text = log.read_text(errors="replace").splitlines() if log.exists() else []
        first = next((n for n, line in enumerate(text) if "[ERROR]" in line or "Traceback" in line), None)
        shown.append(f"--- {log.name}\n" + "\n".join(text[first:first + lines] if first is not None else text[-lines:]))
    return "\n".join(shown)


def check_alive(workers: Sequence[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for process, _ in workers:
        if process.poll() is not None:
            raise BenchError(f"a worker exited with {process.returncode}:\n{tails(workers)}")


def wait_settled(workers: Sequence[tuple[subprocess.Popen[bytes], Path]], partitions: int) -> None:
    deadline = time.monotonic() + SETTLE_WAIT
    while True:
        check_alive(workers)
        assignments = [latest_assignment(log.read_text(errors="replace")) if log.exists() else []
                       for _, log in workers]
        if settled(assignments, partitions):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the workers did not share the partitions out within {SETTLE_WAIT:.0f} s "
                             f"(latest assignments {assignments}):\n{tails(workers)}")
        time.sleep(POLL)


def drain(cluster: KafkaCluster, brokers: int, base: Settings, count: int, records: Sequence[KafkaRecord],
          services: int, work_dir: Path) -> Drain:
    settings = base.model_copy(update={"topic_prefix": f"scale{uuid.uuid4().hex[:8]}."})
    registry = TopicRegistry.from_settings(settings)
    try:
        # The sequencer's state topic too: each worker's loop creates it at start if missing, and two
        # workers starting together on a cluster can race there (one creates it, the other's describe
        # reaches a broker that does not know it yet: UNKNOWN_TOPIC_OR_PART ends that worker's loop
        # thread while the process lives on; seen twice in five 3-broker runs).
        report = provision_topics(settings, registry.specs(tables=[SEQUENCER_STATE]))
        if not report.ok:
            raise BenchError(f"could not create the topics: {report.problems}")
        publish_shipyard(settings, registry, (THROUGHPUT_PROJECT,), shipyard_text(TASKS))
        broker_pids = [pid for layout in cluster.layouts if (pid := cluster.pid(layout.node_id)) is not None]
        if len(broker_pids) != brokers:
            raise BenchError(f"{brokers - len(broker_pids)} of the {brokers} brokers are not running")
        run_dir = work_dir / f"{brokers}b-{count}w-{settings.topic_prefix.rstrip('.')}"
        run_dir.mkdir()
        with workers_running(settings, count, run_dir) as workers:
            wait_settled(workers, settings.partitions)
            worker_pids = [process.pid for process, _ in workers]
            settled_at = CpuSample.take(broker_pids, worker_pids)
            time.sleep(IDLE_SECONDS)
            before = CpuSample.take(broker_pids, worker_pids)
            idle = before - settled_at
            asyncio.run(send_all(settings, registry.events, records))
            group = registry.app_id("sequencer")
            deadline = time.monotonic() + DRAIN_WAIT
            while not drained(settings, group, registry.events):
                check_alive(workers)
                if time.monotonic() > deadline:
                    raise BenchError(f"{count} worker(s) did not drain the backlog within {DRAIN_WAIT:.0f} s:\n"
                                     f"{tails(workers)}")
                time.sleep(POLL)
            cpu = CpuSample.take(broker_pids, worker_pids) - before
            try:
                times = asyncio.run(transition_times(settings, registry.audit, THROUGHPUT_PROJECT, services))
            except TimeoutError:
                raise BenchError(f"not every backlog sequence finished:\n{tails(workers)}") from None
        return Drain(brokers, count, len(records), (max(times) - min(times)).total_seconds(), cpu, idle)
    finally:
        delete_topics(settings, settings.topic_prefix)


def on_cluster(brokers: int, worker_counts: Sequence[int], records: Sequence[KafkaRecord], services: int,
               partitions: int, work_dir: Path, warm_up: bool) -> list[Drain]:
    home = work_dir / f"cluster-{brokers}"
    print(f"starting a {brokers}-broker cluster ...", flush=True)
    with kafka_cluster(brokers, home=home) as cluster:
        base = Settings(kafka_bootstrap=cluster.bootstrap, topic_prefix="unused.", partitions=partitions,
                        replication_factor=min(brokers, 3), store="memory://", data_dir=work_dir / "faust",
                        web_enabled=False)
        if warm_up:  # fresh JVMs compile as they go: the first drain on a new cluster is the slowest
            print(f"  warm-up: 1 worker draining {len(records):,d} events ...", flush=True)
            first = drain(cluster, brokers, base, 1, records, services, work_dir)
            print(f"  warm-up: {first.rate:,.0f} events/s (not counted)", flush=True)
        drains = []
        for count in worker_counts:
            print(f"  {count} worker(s) draining {len(records):,d} events of {services:,d} sequences ...", flush=True)
            drains.append(drain(cluster, brokers, base, count, records, services, work_dir))
        return drains


def report(results: Mapping[int, Sequence[Drain]], cores: int) -> str:
    lines = []
    for brokers, drains in results.items():
        single = mean_rate(drains, 1)
        replicas = "3 replicas, min ISR 2" if brokers >= 3 else f"{brokers} replica(s)"
        lines.append(f"{brokers} broker(s) ({replicas}), {drains[0].events:,d} events per drain; rate over the "
                     "audited span; cores = CPU s / s from publishing to all committed:")
        lines += [d.line(single) for d in drains]
        lines += allows(drains, cores)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--brokers", type=int, nargs="+", default=[3, 1], help="cluster sizes, one cluster each")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts, one drain each")
    parser.add_argument("--services", type=int, default=1500, help="sequences in the backlog")
    parser.add_argument("--partitions", type=int, default=12, help="partitions of every topic")
    parser.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True,
                        help="drain the backlog once with one worker on each new cluster before measuring")
    parser.add_argument("--work-dir", type=Path, help="keep the clusters' data and the workers' logs here "
                        "(default: a temporary directory, removed at the end)")
    options = parser.parse_args()
    if min(options.brokers) < 1 or min(options.workers) < 1 or options.services < 1:
        parser.error("--brokers, --workers and --services must be at least 1")
    if max(options.workers) > options.partitions:
        parser.error("more workers than partitions would leave some idle")
    shipyard = load_text(shipyard_text(TASKS), "bench/shipyard.yaml", FileKind.SHIPYARD).model
    assert isinstance(shipyard, Shipyard)
    records = [encode(event) for event in backlog(shipyard, options.services)]
    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{cores} cores, load average {load} at the start", flush=True)
    started = time.monotonic()
    results: dict[int, list[Drain]] = {}
    with contextlib.ExitStack() as stack:
        if options.work_dir is not None:
            work = options.work_dir.resolve()
            work.mkdir(parents=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tidegate-scaleout-")))
        try:
            for brokers in options.brokers:
                results[brokers] = on_cluster(brokers, options.workers, records, options.services,
                                              options.partitions, work, options.warm_up)
        except BenchError as error:
            raise SystemExit(f"bench_scaleout failed: {error}") from None
    print(report(results, cores))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"(run took {time.monotonic() - started:.0f} s; load average {load} at the end)")


if __name__ == "__main__":
    main()
