"""A resumable chain of command-line stages with a ledger, progress lines and an ETA.

Used by ``gsgm reference`` (generate -> train -> distill -> sample -> evaluate -> plot). Each stage is one
command; the chain keeps a ledger (JSON, written atomically) of the stages that finished and how long
each took. Running the chain again skips what the ledger (or the stage's own ``done`` check of its
outputs) says is finished and reruns the first unfinished stage, whose command is itself resumable
(training from its last checkpoint, sampling from its last chunk), so a kill -9 anywhere loses at most
the work since the stage's last checkpoint.

The ETA scales the stages' nominal durations (measured once, recorded with each stage) by how fast the
finished stages ran against their own nominal durations on this machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsgm.utils.atomic import write_json_atomic

__all__ = ["LEDGER_FORMAT", "Stage", "StageFailed", "estimate_remaining", "format_duration", "run_stages"]

LEDGER_FORMAT = "gsgm.stages"


@dataclass(frozen=True)
class Stage:
    """One stage of a chain.

    Attributes:
        name: unique within the chain (the ledger's key), e.g. ``"train"``.
        argv: the command, ``[program, arg, ...]``.
        nominal_s: expected wall time in seconds on the reference machine (for the ETA only).
        done: optional check of the stage's outputs, for a stage that finished but whose ledger entry was
            lost (a kill between the command's end and the ledger write); None trusts the ledger alone.
        description: what the stage makes, for the progress line.
    """

    name: str
    argv: Sequence[str]
    nominal_s: float
    done: Callable[[], bool] | None = field(default=None, compare=False)
    description: str = ""


class StageFailed(RuntimeError):
    """A stage's command exited with a non-zero status (the ledger keeps what finished before it)."""

    def __init__(self, stage: Stage, returncode: int):
        super().__init__(
            f"stage {stage.name!r} failed with exit status {returncode}: {' '.join(map(str, stage.argv))}"
        )
        self.stage = stage
        self.returncode = returncode


def format_duration(seconds: float) -> str:
    """``3725.0`` -> ``"1h02m05s"``; ``65`` -> ``"1m05s"``; ``7`` -> ``"7s"``."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def estimate_remaining(stages: Sequence[Stage], finished: dict[str, float]) -> float:
    """Seconds still to go: the unfinished stages' nominal times, scaled by this machine's pace.

    Args:
        stages: the whole chain.
        finished: stage name -> measured seconds, for the stages finished so far (in this or an earlier
            invocation).

    Returns:
        sum of the unfinished stages' ``nominal_s`` times (measured / nominal of the finished stages),
        the factor being 1 while nothing has finished or the finished stages have no nominal time.
    """
    nominal_done = sum(s.nominal_s for s in stages if s.name in finished)
    measured_done = sum(finished[s.name] for s in stages if s.name in finished)
    pace = measured_done / nominal_done if nominal_done > 0 and measured_done > 0 else 1.0
    return pace * sum(s.nominal_s for s in stages if s.name not in finished)


def _read_ledger(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"format": LEDGER_FORMAT, "version": 1, "stages": {}}
    try:
        ledger = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable stage ledger ({error}); remove it to start over") from None
    if (
        not isinstance(ledger, dict)
        or ledger.get("format") != LEDGER_FORMAT
        or not isinstance(ledger.get("stages"), dict)
    ):
        raise ValueError(f"{path}: not a {LEDGER_FORMAT} ledger (key 'format' or 'stages'); remove it")
    return ledger


def run_stages(
    stages: Sequence[Stage],
    ledger_path: str | Path,
    runner: Callable[[Sequence[str]], int],
    log: Callable[[str], None] = print,
    until: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Run the unfinished stages in order; return stage name -> seconds for every finished stage.

    Args:
        stages: the chain, in order (names unique).
        ledger_path: JSON ledger of finished stages; created if missing, updated (atomically) after
            every stage, so a rerun continues at the first unfinished stage.
        runner: runs one command and returns its exit status (e.g. a ``subprocess.call`` wrapper).
        log: receives one progress line before and after every stage (stage i/n, elapsed, ETA).
        until: stop after the stage of this name (it and everything before it are run).
        clock: seconds (for tests).

    Raises:
        ValueError: duplicate stage names, an unknown ``until`` or an unreadable ledger.
        StageFailed: a stage's command failed; the finished stages stay in the ledger.
    """
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    if until is not None and until not in names:
        raise ValueError(f"unknown stage {until!r}; stages: {', '.join(names)}")
    path = Path(ledger_path)
    ledger = _read_ledger(path)
    finished: dict[str, float] = {
        name: float(entry["seconds"]) for name, entry in ledger["stages"].items() if name in names
    }
    started = clock()
    last = names.index(until) if until is not None else len(stages) - 1
    for index, stage in enumerate(stages[: last + 1]):
        position = f"[{index + 1}/{len(stages)} {stage.name}]"
        if stage.name in finished:
            log(f"{position} done earlier ({format_duration(finished[stage.name])}), skipped")
            continue
        if stage.done is not None and stage.done():
            log(f"{position} outputs already complete, skipped")
            finished[stage.name] = 0.0
            ledger["stages"][stage.name] = {"seconds": 0.0, "finished": time.time(), "found_complete": True}
            write_json_atomic(path, ledger)
            continue
        remaining = estimate_remaining(stages, finished)
        what = f" {stage.description}" if stage.description else ""
        log(
            f"{position}{what}: starting; elapsed {format_duration(clock() - started)}, "
            f"ETA of the rest ~{format_duration(remaining)}"
        )
        stage_start = clock()
        returncode = runner(list(stage.argv))
        seconds = clock() - stage_start
        if returncode != 0:
            raise StageFailed(stage, returncode)
        finished[stage.name] = seconds
        ledger["stages"][stage.name] = {"seconds": round(seconds, 2), "finished": time.time()}
        write_json_atomic(path, ledger)
        log(
            f"{position} finished in {format_duration(seconds)}; "
            f"ETA of the rest ~{format_duration(estimate_remaining(stages, finished))}"
        )
    return finished
