"""``snn4 replay``: several recordings, in parallel processes, with one progress bar.

Each recording is replayed in its own process (spawned, one torch thread each), in process
or through the real ROS nodes (``via_ros``, one recording at a time: the nodes share the
DDS topics); labels are attached and checked against each recording's time range; the
metrics are pooled over all recordings and written as one report.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..events.labels import Interval, check_labels, labels_from_topic, load_labels_csv
from ..eval.inprocess import ReplayOptions, ReplayTrace


@dataclass
class ReplayJob:
    recordings: list[str]
    model: str | None                        # None: auto_model (real camera or simulator)
    opts: ReplayOptions = field(default_factory=ReplayOptions)
    labels: list[str] | None = None          # one CSV per recording, or None
    label_topic: str | None = None
    auto_labels: bool = True                 # use RECORDING.labels.csv when it exists
    via_ros: bool = False
    jobs: int = 0                            # processes (0: one per recording, up to cores)
    threshold: float = 0.9
    # (recording, error) of every recording that could not be replayed; the others go on
    # (``opts.strict``: the first such error stops the job instead)
    failures: list[tuple[str, str]] = field(default_factory=list)
    model_note: str = ""                     # why auto_model chose the simulator's model


def labels_for(job: ReplayJob, i: int) -> tuple[list[Interval] | None, str | None]:
    rec = job.recordings[i]
    if job.label_topic:
        return labels_from_topic(rec, job.label_topic), f"topic {job.label_topic}"
    if job.labels:
        return load_labels_csv(job.labels[i]), job.labels[i]
    auto = Path(rec).parent / f"{Path(rec).name}.labels.csv"
    if job.auto_labels and auto.exists():
        return load_labels_csv(auto), str(auto)
    return None, None


def _message_count(path: str, topic: str | None) -> int | None:
    from ..events.bags import bag_topics, choose_event_topic
    from ..events.sources import detect_format

    try:
        if detect_format(path) in ("rosbag2", "rosbag1"):
            return choose_event_topic(bag_topics(path), topic, path).messages
    except Exception:
        return None
    return None


_progress_q = None


def _init_worker(q) -> None:
    global _progress_q
    _progress_q = q
    import torch
    torch.set_num_threads(1)


def _one(args) -> ReplayTrace:
    path, model, opts, via_ros = args
    progress = (lambda n: _progress_q.put(n)) if _progress_q is not None else None
    if via_ros:
        from ..ros.dds_replay import replay_via_ros
        return replay_via_ros(path, model, opts, progress=progress)
    from ..models import checkpoint
    from ..models.zoo import find_model
    from ..eval.inprocess import replay

    net, card = checkpoint.load(find_model(model))
    return replay(path, net, opts, card, progress=progress)


def auto_model(job: ReplayJob) -> tuple[str, str]:
    """No ``--model``: the real-camera model, unless the recordings' labels name gestures
    only the simulator's model has (a labelled synthetic recording from ``snn4
    record-synthetic``): a model cannot be scored on classes it does not have."""
    from ..models.zoo import DEMO_MODEL, REAL_MODEL, shipped_models

    cards = shipped_models()
    named = set()
    for i in range(len(job.recordings)):
        try:
            ivs, _ = labels_for(job, i)
        except Exception:                # check_job reports it, per recording
            continue
        named |= {iv.cls for iv in ivs or []}
    real, sim = (set(cards.get(m, {}).get("classes") or []) for m in (REAL_MODEL, DEMO_MODEL))
    if named - real and named <= sim:
        return DEMO_MODEL, (f"the labels name simulator gestures ({', '.join(sorted(named - real))}"
                            f"): replaying with the simulator's model {DEMO_MODEL} "
                            f"(--model to choose)")
    return REAL_MODEL, ""


def check_job(job: ReplayJob, on_bad=None) -> list:
    """Everything that can be found wrong before a process starts or a model loads: the
    model (a wrong name lists the shipped ones), each recording's format, the label files
    and their classes against the model card's. Returns the labels per recording.

    ``on_bad(i, error)`` takes a problem of recording i (its format, labels) instead of
    raising it; that recording's labels are then None (it is not replayed)."""
    import json

    from ..events.errors import UserError
    from ..events.labels import LabelError
    from ..events.sources import detect_format
    from ..models.checkpoint import paths
    from ..models.zoo import find_model

    if job.model is None:
        job.model, job.model_note = auto_model(job)
    base = find_model(job.model)
    try:
        classes = json.loads(paths(base)[1].read_text()).get("classes") or []
    except (OSError, ValueError):
        classes = []                     # checkpoint.load says what is wrong, in the worker
    if job.labels and len(job.labels) != len(job.recordings):
        raise UserError(f"{len(job.labels)} --labels files for {len(job.recordings)} "
                        "recordings: give one per recording, in the same order")
    labels = []
    for i, rec in enumerate(job.recordings):
        try:
            detect_format(rec)           # no such file, or a format nobody reads
            ivs, src = labels_for(job, i)
            unknown = sorted({iv.cls for iv in ivs or []} - set(classes)) if classes else []
            if unknown:
                raise LabelError(f"label classes {unknown} are not among the classes of model "
                                 f"{job.model} ({', '.join(classes)})", where=f"{rec} ({src})")
            labels.append((ivs, src))
        except Exception as exc:
            if on_bad is None:
                raise
            on_bad(i, exc)
            labels.append(None)
    return labels


def run_replay(job: ReplayJob, show_progress: bool = True) -> list[ReplayTrace]:
    """Replay every recording; returns the traces with their labels attached."""
    from tqdm import tqdm

    from ..events.errors import UserError

    job.failures = []

    def failed(i: int, exc: BaseException) -> None:
        if job.opts.strict or not isinstance(exc, (UserError, ValueError, FileNotFoundError,
                                                   TimeoutError)):
            raise exc
        job.failures.append((job.recordings[i], str(exc)))

    labels = check_job(job, on_bad=failed)              # fail before work
    if job.recordings and len(job.failures) == len(job.recordings):
        # nothing left to replay: one line now, before a progress bar or a process starts
        rec, why = job.failures[0]
        raise UserError(why if len(job.failures) == 1 else
                        f"none of the {len(job.recordings)} recordings can be replayed "
                        f"(the first: {why})")
    counts = [_message_count(r, job.opts.topic) for r in job.recordings]
    total = sum(counts) if all(c is not None for c in counts) else None
    bar = tqdm(total=total, unit="msg", desc="replay", disable=not show_progress)
    args = [(r, job.model, job.opts, job.via_ros) if labels[i] is not None else None
            for i, r in enumerate(job.recordings)]
    workers = 1 if job.via_ros else (job.jobs or max(1, min(len(args), mp.cpu_count())))
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    q = manager.Queue()
    traces: list[ReplayTrace | None] = [None] * len(args)
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(q,)) as ex:
            futs = {ex.submit(_one, a): i for i, a in enumerate(args) if a is not None}
            pending = set(futs)
            while pending:
                done = {f for f in pending if f.done()}
                for f in done:
                    try:
                        traces[futs[f]] = f.result()
                    except Exception as exc:      # one bad file: reported, the rest go on
                        for other in pending:
                            if job.opts.strict:
                                other.cancel()
                        failed(futs[f], exc)
                pending -= done
                while not q.empty():
                    bar.update(q.get())
                if pending:
                    import time
                    time.sleep(0.05)
            while not q.empty():
                bar.update(q.get())
    finally:
        bar.close()
        manager.shutdown()
    out = []
    for i, (tr, lab) in enumerate(zip(traces, labels)):
        if tr is None:
            continue
        ivs, src = lab
        if ivs is not None:
            try:
                tr.labels, tr.labels_skipped = check_labels(
                    ivs, tr.classes, tr.t_first_ns, tr.t_last_ns, f"{tr.source} ({src})")
            except Exception as exc:
                failed(i, exc)
                continue
            tr.model["labels"] = src
        out.append(tr)
    return out
