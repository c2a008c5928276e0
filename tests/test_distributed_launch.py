"""The torchrun launcher behind `--nproc`: argument building, validation and failure reports.

These run in one process; tests/test_distributed_train.py starts real 2-process jobs.
"""

import pytest
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure
from torch.distributed.run import parse_args
from typer.testing import CliRunner

from rlo_cli.app import app
from rlo_cli.launch import (LaunchOptions, describe_failures, failure_exit_code,
                            torchrun_arguments, worker_arguments)
from rlo_core.errors import ConfigError
from rlo_core.train.config import TrainConfig
from rlo_core.train.pipeline import run_train

runner = CliRunner()


def test_worker_arguments_drop_launcher_flags():
    argv = ["-v", "train", "--nproc", "2", "--epochs", "3", "--master-addr=10.0.0.1",
            "--node-rank", "1", "--name", "ddp"]
    assert worker_arguments(argv, "train") == ["-v", "train", "--epochs", "3", "--name", "ddp"]


def test_worker_arguments_need_command_line():
    with pytest.raises(ConfigError, match="torchrun --nproc-per-node N -m rlo_cli train"):
        worker_arguments(["tests/test_distributed_launch.py"], "train")


def test_single_machine_uses_loopback_free_port():
    args = torchrun_arguments(LaunchOptions(nproc=2), ["train", "--epochs", "1"])
    endpoint = args[args.index("--rdzv-endpoint") + 1]
    assert endpoint == "127.0.0.1:0"


def test_arguments_end_with_module_command():
    args = torchrun_arguments(LaunchOptions(nproc=2), ["train", "--epochs", "1"])
    assert args[-5:] == ["-m", "rlo_cli", "train", "--epochs", "1"]


def test_torchrun_parses_single_machine_arguments():
    parsed = parse_args(torchrun_arguments(LaunchOptions(nproc=3), ["train"]))
    assert (parsed.nproc_per_node, parsed.module, parsed.training_script) == ("3", True, "rlo_cli")


def test_static_rendezvous_arguments():
    options = LaunchOptions(nproc=8, nnodes="2", node_rank=1, master_addr="10.0.0.1")
    parsed = parse_args(torchrun_arguments(options, ["train"]))
    assert (parsed.rdzv_backend, parsed.master_addr, parsed.master_port, parsed.node_rank,
            parsed.nnodes) == ("static", "10.0.0.1", 29500, 1, "2")


def test_c10d_rendezvous_arguments():
    options = LaunchOptions(nproc=4, nnodes="1:4", rdzv_endpoint="head:29400", rdzv_id="job7")
    parsed = parse_args(torchrun_arguments(options, ["train"]))
    assert (parsed.rdzv_backend, parsed.rdzv_endpoint, parsed.rdzv_id, parsed.nnodes) == (
        "c10d", "head:29400", "job7", "1:4")


@pytest.mark.parametrize("options, message", [
    (LaunchOptions(nproc=0), "--nproc must be a positive integer"),
    (LaunchOptions(nproc=2, nnodes="two"), "--nnodes must be a positive integer or MIN:MAX"),
    (LaunchOptions(nproc=2, nnodes="2"), "--master-addr HOST"),
    (LaunchOptions(nproc=2, nnodes="2", master_addr="a", rdzv_endpoint="b:1"), "not both"),
    (LaunchOptions(nproc=2, nnodes="2", master_addr="a", node_rank=2),
     "--node-rank 2 is out of range for --nnodes 2"),
    (LaunchOptions(nproc=2, nnodes="3:2", rdzv_endpoint="h:1"), "MIN <= MAX"),
    (LaunchOptions(nproc=2, master_port=29999), "need --master-addr HOST"),
    (LaunchOptions(nproc=2, node_rank=1), "need --master-addr HOST"),
])
def test_invalid_launch_options(options, message):
    with pytest.raises(ConfigError, match=message):
        options.validate()


@pytest.mark.parametrize("flags, message", [
    (["--nproc", "0"], "--nproc must be a positive integer"),
    (["--nproc", "2", "--nnodes", "2"], "needs a meeting point"),
    (["--nproc", "3", "--batch-size", "64"], "does not split evenly into --grad-accum 1 x 3"),
])
def test_cli_rejects_bad_launch_flags(flags, message, tmp_path):
    result = runner.invoke(app, ["train", "--dataset", "digits", "--device", "cpu",
                                 "--runs-dir", str(tmp_path), *flags])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def failed_job() -> ChildFailedError:
    return ChildFailedError("rlo_cli", {
        0: ProcessFailure(local_rank=0, pid=100, exitcode=143, error_file=""),
        1: ProcessFailure(local_rank=1, pid=101, exitcode=-9, error_file=""),
    })


def test_failure_report_names_killed_rank():
    message = describe_failures(failed_job())
    assert "rank 1 (local rank 1, pid 101) was killed by signal SIGKILL" in message


def test_failure_report_names_stopped_rank():
    message = describe_failures(failed_job())
    assert "torchrun then stopped rank 0 (pid 100)" in message


def test_failure_exit_code_of_killed_rank():
    assert failure_exit_code(failed_job()) == 137


def test_sync_bn_on_cpu_is_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    config = TrainConfig(dataset="digits", net="res18", device="cpu", sync_bn=True,
                         runs_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--sync-bn needs CUDA"):
        run_train(config)


def test_lost_peer_error_recognized(monkeypatch):
    from rlo_cli.common import is_lost_peer

    gloo = RuntimeError("[third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed "
                        "by peer [127.0.0.1]:11677")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert is_lost_peer(gloo)
    assert not is_lost_peer(RuntimeError("shape mismatch"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not is_lost_peer(gloo)


def test_error_with_brackets_prints_verbatim(tmp_path):
    # '[/x]' would be a closing Rich markup tag if the message were not escaped.
    result = runner.invoke(app, ["train", "--resume", "[/x]", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "'[/x]'" in result.output
