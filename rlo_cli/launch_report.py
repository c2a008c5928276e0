"""The `--nproc` launcher's report and record of a distributed job that stops early.

The launcher does not know the run directory in advance: rank 0 creates it. It lists the
runs folder before the job starts, and afterwards takes the new directory whose status.json
names one of the job's processes. A rank killed outright (SIGKILL, out of memory) cannot mark
its run, so the launcher marks it failed with the launcher's own description of the failure.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from rlo_core.runs import find_runs, read_status
from rlo_core.runs.status import write_status

log = logging.getLogger(__name__)


@dataclass
class JobRuns:
    """The runs folder of a job, listed before it starts, or the run it resumes."""

    command: str
    nproc: int
    runs_dir: Path
    resume_dir: Optional[Path] = None
    multi_node: bool = False
    before: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.resume_dir is None:
            self.before = set(find_runs(self.runs_dir))

    def run_dir(self, pids: Iterable[int] = ()) -> Optional[Path]:
        """Return the resumed run, or the newest new run (one whose status names `pids` when
        any are given)."""
        if self.resume_dir is not None:
            return self.resume_dir
        job_pids = set(pids)
        for path in reversed(find_runs(self.runs_dir)):
            if path in self.before:
                continue
            if not job_pids or read_status(path).get("pid") in job_pids:
                return path
        return None

    def resume_hint(self, run_dir: Optional[Path]) -> str:
        if run_dir is not None and not has_checkpoint(run_dir):
            return (f"Rank 0 created {run_dir} but saved no checkpoint before the failure, so "
                    "there is nothing to resume: start a new run.")
        if run_dir is not None:
            return (f"Continue from its last checkpoint with 'rlo {self.command} --nproc "
                    f"{self.nproc} --resume {run_dir}'.")
        if self.multi_node:
            return (f"If rank 0 created a run directory on its machine, continue it with 'rlo "
                    f"{self.command} --resume RUN_DIR' and the same launch options.")
        return ("No run directory was created, so there is nothing to resume: fix the error "
                "above and run the command again.")


def has_checkpoint(run_dir: Path) -> bool:
    """Return True when the run's checkpoints folder has any entry (rlo train's last.pt or a
    Trainer's checkpoint-N)."""
    folder = run_dir / "checkpoints"
    return folder.is_dir() and any(folder.iterdir())


def mark_failed(run_dir: Path, pids: Iterable[int], message: str) -> None:
    """Mark `run_dir` failed with `message` when its status names one of `pids`.

    Only a run still 'running' (rank 0 was killed) or 'failed' changes. A rank's own error,
    often just a broken connection to the rank that died, is kept as `rank_error`.
    """
    status = read_status(run_dir)
    if status.get("pid") not in set(pids) or status.get("state") not in ("running", "failed"):
        return
    if status.get("state") == "failed" and status.get("error"):
        status["rank_error"] = status["error"]
    status.update(state="failed", error=message, ended_at=time.time(), updated_at=time.time())
    try:
        write_status(run_dir, status)
    except OSError as error:
        log.warning("Could not mark %s failed: %s", run_dir, error)
