"""`--nproc N`: run an `rlo` command on N processes per machine through torchrun.

`rlo train --nproc 2 ...` starts `torch.distributed.run` (torchrun) in this process with
`--nproc-per-node 2 -m rlo_cli train ...`, the same command line without the launcher's
own options. Each worker reads torchrun's RANK, LOCAL_RANK and WORLD_SIZE variables and runs
the command as one rank of the job. `torchrun --nproc-per-node 2 -m rlo_cli train ...`
starts the same workers directly.

When a worker fails or is killed, torchrun stops the others (SIGTERM, then SIGKILL after
its shutdown timeout of 30 s) and the launcher exits non-zero with one error that names the
failed ranks.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from rlo_core.errors import ConfigError, RloError

if TYPE_CHECKING:
    from rlo_cli.launch_report import JobRuns

log = logging.getLogger(__name__)

PANEL = "Distributed"
# Parameter names of the options below; commands leave them out of their pipeline config.
LAUNCH_PARAMETERS = frozenset({"nproc", "nnodes", "node_rank", "master_addr", "master_port",
                               "rdzv_endpoint", "rdzv_id"})
# The launcher's flags, removed from the command line the workers receive.
LAUNCH_FLAGS = ("--nproc", "--nnodes", "--node-rank", "--master-addr", "--master-port",
                "--rdzv-endpoint", "--rdzv-id")
DEFAULT_MASTER_PORT = 29500


# -- options shared by the commands that can launch themselves ------------------------------

def nproc_option() -> Any:
    return typer.Option(1, "--nproc", rich_help_panel=PANEL,
                        help="Processes per machine, started with torchrun (one per GPU).")


def nnodes_option() -> Any:
    return typer.Option("1", "--nnodes", rich_help_panel=PANEL,
                        help="Machines in the job, or MIN:MAX for an elastic job.")


def node_rank_option() -> Any:
    return typer.Option(0, "--node-rank", rich_help_panel=PANEL,
                        help="This machine's index, 0 to nnodes-1 (with --master-addr).")


def master_addr_option() -> Any:
    return typer.Option(None, "--master-addr", rich_help_panel=PANEL,
                        help="Address of the machine with node rank 0 (multi-machine jobs).")


def master_port_option() -> Any:
    return typer.Option(None, "--master-port", rich_help_panel=PANEL,
                        help=f"TCP port on the --master-addr machine \\[default: "
                             f"{DEFAULT_MASTER_PORT}].")


def rdzv_endpoint_option() -> Any:
    return typer.Option(None, "--rdzv-endpoint", rich_help_panel=PANEL,
                        help="HOST:PORT of a c10d rendezvous, instead of --master-addr and "
                             "--node-rank.")


def rdzv_id_option() -> Any:
    return typer.Option(None, "--rdzv-id", rich_help_panel=PANEL,
                        help="Job id shared by all machines of a c10d rendezvous.")


# -- the launch itself -------------------------------------------------------------------------

class DistributedJobError(RloError):
    """A rank of a distributed job failed, so the launcher stopped the job."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class RankStopped(RloError):
    """This rank received SIGTERM, which torchrun sends when another rank failed or the
    launcher was stopped."""

    exit_code = 128 + signal.SIGTERM


@dataclass
class LaunchOptions:
    nproc: int = 1
    nnodes: str = "1"
    node_rank: int = 0
    master_addr: Optional[str] = None
    master_port: Optional[int] = None
    rdzv_endpoint: Optional[str] = None
    rdzv_id: Optional[str] = None

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> "LaunchOptions":
        return cls(**{name: values[name] for name in LAUNCH_PARAMETERS if name in values})

    @property
    def multi_node(self) -> bool:
        return self.nnodes != "1" or bool(self.master_addr or self.rdzv_endpoint)

    @property
    def max_processes(self) -> int:
        """Processes in the whole job when every allowed machine joins."""
        return self.nproc * int(self.nnodes.split(":")[-1])

    def job_runs(self, command: str, runs_dir: Optional[str],
                 resume_dir: Optional[Path] = None) -> "JobRuns":
        """Describe where the job's run directory is, for the launcher's report."""
        from rlo_cli.launch_report import JobRuns
        from rlo_core.runs import default_runs_dir

        return JobRuns(command, self.nproc, Path(runs_dir) if runs_dir else default_runs_dir(),
                       resume_dir=resume_dir, multi_node=self.multi_node)

    @property
    def requested(self) -> bool:
        """True when the options ask for more than one process in the whole job."""
        return self.nproc > 1 or self.multi_node

    def validate(self) -> None:
        if self.nproc < 1:
            raise ConfigError(f"--nproc must be a positive integer, got {self.nproc}.")
        parts = self.nnodes.split(":")
        if (len(parts) > 2 or not all(part.isdigit() and int(part) > 0 for part in parts)
                or int(parts[0]) > int(parts[-1])):
            raise ConfigError(f"--nnodes must be a positive integer or MIN:MAX with MIN <= MAX, "
                              f"got '{self.nnodes}'.")
        if self.multi_node and not (self.master_addr or self.rdzv_endpoint):
            raise ConfigError(
                f"--nnodes {self.nnodes} needs a meeting point for the machines: pass "
                "--master-addr HOST (with --node-rank on every machine) or --rdzv-endpoint "
                "HOST:PORT.")
        if self.master_addr and self.rdzv_endpoint:
            raise ConfigError("Pass either --master-addr (static rendezvous) or "
                              "--rdzv-endpoint (c10d rendezvous), not both.")
        if self.node_rank < 0:
            raise ConfigError(f"--node-rank must be >= 0, got {self.node_rank}.")
        if not self.master_addr and (self.master_port is not None or self.node_rank != 0):
            raise ConfigError(
                "--master-port and --node-rank describe a multi-machine job and need "
                "--master-addr HOST. On one machine leave them out: the processes meet on a "
                "free port that the operating system picks.")
        if self.master_addr and len(parts) == 1 and self.node_rank >= int(parts[0]):
            raise ConfigError(f"--node-rank {self.node_rank} is out of range for --nnodes "
                              f"{self.nnodes}: number the machines 0 to {int(parts[0]) - 1}.")


def inside_torchrun() -> bool:
    """True in a worker process that torchrun (or another launcher) started."""
    return "LOCAL_RANK" in os.environ or os.environ.get("WORLD_SIZE", "1") not in ("", "1")


def worker_arguments(argv: list[str], command: str) -> list[str]:
    """Return `argv` (the arguments after the program name) without the launcher's flags."""
    if command not in argv:
        raise ConfigError(
            f"--nproc needs the command line of 'rlo {command}', but this process was started "
            f"with {argv!r}. Run 'rlo {command} --nproc N ...' from a shell, or start the "
            f"workers yourself with 'torchrun --nproc-per-node N -m rlo_cli {command} ...'.")
    remaining: list[str] = []
    skip_value = False
    for token in argv:
        if skip_value:
            skip_value = False
        elif token in LAUNCH_FLAGS:
            skip_value = True
        elif not any(token.startswith(flag + "=") for flag in LAUNCH_FLAGS):
            remaining.append(token)
    return remaining


def torchrun_arguments(options: LaunchOptions, worker_args: list[str]) -> list[str]:
    """Build torchrun's command line for `python -m rlo_cli <worker_args>`."""
    args = ["--nnodes", options.nnodes, "--nproc-per-node", str(options.nproc)]
    if options.master_addr:
        args += ["--rdzv-backend", "static", "--master-addr", options.master_addr,
                 "--master-port", str(options.master_port or DEFAULT_MASTER_PORT),
                 "--node-rank", str(options.node_rank)]
    elif options.rdzv_endpoint:
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", options.rdzv_endpoint]
        if options.rdzv_id:
            args += ["--rdzv-id", options.rdzv_id]
    else:
        # One machine: the workers meet at 127.0.0.1 on a free port that the OS picks (port
        # 0), so concurrent jobs never collide. NOTE: torch's TCPStore (2.14) binds the
        # wildcard address, so that port is open on every interface while the job runs.
        # gloo's own connections stay on loopback (GLOO_SOCKET_IFNAME below).
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0",
                 "--rdzv-id", uuid.uuid4().hex]
    return args + ["-m", "rlo_cli", *worker_args]


def _set_worker_environment(options: LaunchOptions) -> None:
    """Set the environment the workers inherit: CPU threads per process, and loopback for
    gloo on one machine."""
    if "OMP_NUM_THREADS" not in os.environ:
        # torchrun would set 1 and print a warning; share this machine's cores instead.
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // options.nproc))
    if not options.multi_node and "GLOO_SOCKET_IFNAME" not in os.environ:
        loopback = {name for _, name in socket.if_nameindex()} & {"lo", "lo0"}
        if loopback:
            os.environ["GLOO_SOCKET_IFNAME"] = loopback.pop()


def parse_torchrun_arguments(options: LaunchOptions, worker_args: list[str]):
    """Return torchrun's parsed arguments for `python -m rlo_cli <worker_args>`.

    The worker arguments are set after parsing. argparse (Python 3.11) matches every token
    that starts with '--' against its options by prefix, even after the module name. '--m 4'
    (the loss's m) would then fail as an ambiguous abbreviation of '--master-port'.
    """
    from torch.distributed.run import parse_args

    parsed = parse_args(torchrun_arguments(options, []))
    parsed.training_script_args = list(worker_args)
    return parsed


def launch(options: LaunchOptions, argv: list[str], command: str, *, runs: "JobRuns",
           interrupt_note: str = "torchrun passed the interrupt on to every process.") -> None:
    """Run `rlo <argv>` under torchrun and return when every local worker succeeded.

    Raises DistributedJobError naming the failed ranks when a worker fails or is killed, and
    marks the job's run directory failed if no rank could. When the launcher itself receives
    SIGINT it raises TrainingInterrupted, and for SIGTERM, SIGHUP or SIGQUIT a
    DistributedJobError, after torchrun passed the signal on.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import run

    from rlo_cli.launch_report import mark_failed
    from rlo_core.errors import TrainingInterrupted

    options.validate()
    worker_args = worker_arguments(argv, command)
    parsed = parse_torchrun_arguments(options, worker_args)
    _set_worker_environment(options)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # On one machine the error below describes every failure that torchrun would log.
        # Across machines its warnings tell how the rendezvous is going.
        level = logging.WARNING if options.multi_node else logging.CRITICAL
        logging.getLogger("torch.distributed.elastic").setLevel(level)
    log.info("Starting %d process(es) on this machine: torchrun %s", options.nproc,
             " ".join(torchrun_arguments(options, worker_args)))
    try:
        run(parsed)
    except ChildFailedError as error:
        pids = [failure.pid for failure in error.failures.values()]
        run_dir = runs.run_dir(pids)
        message = describe_failures(error)
        if run_dir is not None:
            mark_failed(run_dir, pids, message)
        raise DistributedJobError(f"{message} {runs.resume_hint(run_dir)}",
                                  exit_code=failure_exit_code(error)) from None
    except SignalException as error:
        hint = runs.resume_hint(runs.run_dir())
        if error.sigval == signal.SIGINT:
            raise TrainingInterrupted(f"Interrupted: {interrupt_note} {hint}") from None
        raise DistributedJobError(
            f"The launcher received {error.sigval.name} and stopped every process. {hint}",
            exit_code=128 + int(error.sigval)) from None


def _describe_failure(rank: int, failure) -> str:
    if failure.exitcode < 0:
        outcome = f"was killed by signal {failure.signal_name()}"
    else:
        outcome = f"exited with code {failure.exitcode}"
    return f"rank {rank} (local rank {failure.local_rank}, pid {failure.pid}) {outcome}"


def _root_causes(error) -> tuple[list[int], list[int]]:
    """Split failed ranks into causes and ranks that torchrun stopped with SIGTERM (exit code
    143 from RankStopped, or -15 when the signal killed the process)."""
    stopped = [rank for rank, failure in sorted(error.failures.items())
               if failure.exitcode in (-signal.SIGTERM, 128 + signal.SIGTERM)]
    causes = [rank for rank in sorted(error.failures) if rank not in stopped]
    return (causes, stopped) if causes else (stopped, [])


def describe_failures(error) -> str:
    """Describe the failed ranks of a torchrun ChildFailedError in one paragraph."""
    causes, stopped = _root_causes(error)
    message = "The distributed job failed: " + "; ".join(
        _describe_failure(rank, error.failures[rank]) for rank in causes) + "."
    if stopped:
        message += " torchrun then stopped " + "; ".join(
            f"rank {rank} (pid {error.failures[rank].pid})" for rank in stopped) + "."
    message += " Each rank's own error message, if it printed one, is above."
    return message


def failure_exit_code(error) -> int:
    """Return the exit code of the lowest failed rank that torchrun did not stop itself, or
    128 + the signal number when a signal killed that rank."""
    causes, _ = _root_causes(error)
    failure = error.failures[causes[0]]
    if failure.exitcode < 0:
        return 128 - failure.exitcode
    return failure.exitcode or 1


# -- inside a worker ---------------------------------------------------------------------------

def _raise_rank_stopped(signum, frame) -> None:
    raise RankStopped("This process received SIGTERM and stopped. torchrun sends SIGTERM to "
                      "every rank when another rank fails or is killed, or when the launcher "
                      "itself is stopped. The launcher's error message names the cause.")


def prepare_worker(nproc: int = 1) -> None:
    """Set up a process that torchrun started: only rank 0 logs below WARNING, and SIGTERM
    raises RankStopped so the run directory is marked failed instead of left 'running'."""
    rank = os.environ.get("RANK", "0")
    if rank != "0":
        logging.getLogger().setLevel(logging.WARNING)
    if nproc > 1 and rank == "0":
        log.warning("--nproc %d is ignored: this process is already one of %s ranks started "
                    "by torchrun.", nproc, os.environ.get("WORLD_SIZE", "?"))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_rank_stopped)


def split_launch_options(values: dict[str, Any]) -> tuple[dict[str, Any], LaunchOptions, bool]:
    """Split a command's parameter values into its own and the launch options.

    Returns the command's values, the launch options, and whether this process must start
    workers through torchrun. In a worker that torchrun started, the process is prepared
    with `prepare_worker` instead, and the launch options are ignored.
    """
    command_values = {name: value for name, value in values.items()
                      if name not in LAUNCH_PARAMETERS}
    options = LaunchOptions.from_values(values)
    if inside_torchrun():
        prepare_worker(options.nproc)
        return command_values, options, False
    options.validate()
    return command_values, options, options.requested


def is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def current_argv() -> list[str]:
    return sys.argv[1:]
