"""modelport train and the Checkpointer: a resumed run ends with the bytes of an uninterrupted one; damaged
checkpoints are skipped and named; another model's or run's checkpoints are refused (exit 2); keep-M pruning.
The kills, the disk filling up and the file-size limit are in test_training_kill.py (marker `kill`)."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import modelport
from modelport.training import Checkpointer, seed_everything

STEPS = ["--steps", "60", "--checkpoint-every", "20"]


def _train(cli, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli("train", "--out", str(out), *extra)


def _ckpt(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:09d}.pt"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 steps of the built-in task, checkpoint every 20, in one go. Do not modify it."""
    from modelport.cli import main

    out = tmp_path_factory.mktemp("train") / "whole"
    assert main(["train", "--out", str(out), *STEPS]) == 0
    return out


def test_a_resumed_run_ends_with_the_bytes_of_an_uninterrupted_one(uninterrupted: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "resumed"
    first = _train(cli, out, "--steps", "30", "--checkpoint-every", "20")
    assert first.code == 0, first.err
    assert "step 30/30" in first.out  # the end is a checkpoint too
    partial = (out / "weights.pt").read_bytes()
    resumed = _train(cli, out, *STEPS, "--resume")
    assert resumed.code == 0, resumed.err
    assert f"resumed from {_ckpt(out, 30)} (step 30)" in resumed.out
    assert partial != (out / "weights.pt").read_bytes()  # it did train on
    assert (out / "weights.pt").read_bytes() == (uninterrupted / "weights.pt").read_bytes()
    # The whole state, optimizer and RNGs included, is the same bytes too.
    assert _ckpt(out, 60).read_bytes() == _ckpt(uninterrupted, 60).read_bytes()


def test_resume_with_nothing_left_changes_nothing(uninterrupted: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "copy"
    (out / "checkpoints").mkdir(parents=True)
    _ckpt(out, 60).write_bytes(_ckpt(uninterrupted, 60).read_bytes())
    result = _train(cli, out, *STEPS, "--resume")
    assert result.code == 0 and "nothing left to train" in result.out, result.err
    assert (out / "weights.pt").read_bytes() == (uninterrupted / "weights.pt").read_bytes()


def _flip_a_tensor_byte(path: Path) -> None:
    """Damage a tensor's bytes, where torch's own reader notices nothing (it checks no CRC)."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def test_damaged_newest_checkpoints_are_skipped_named_and_kept_aside(uninterrupted: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "damaged"
    assert _train(cli, out, "--steps", "50", "--checkpoint-every", "10").code == 0
    newest, second = _ckpt(out, 50), _ckpt(out, 40)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    _flip_a_tensor_byte(second)
    torch.load(second, weights_only=True)  # torch alone would have resumed from the damaged one
    result = _train(cli, out, *STEPS, "--resume")
    assert result.code == 0, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 2, result.err
    assert f"skipped checkpoint {newest}: unreadable" in lines[0] and "step-000000050.pt.corrupt" in lines[0]
    assert f"skipped checkpoint {second}: its content does not match its CRC-32" in lines[1]
    assert f"resumed from {_ckpt(out, 30)} (step 30)" in result.out
    assert (out / "weights.pt").read_bytes() == (uninterrupted / "weights.pt").read_bytes()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step-000000030.pt",
        "step-000000040.pt",  # rewritten by the resumed run (every 20 steps now: not part of the run's settings)
        "step-000000040.pt.corrupt",
        "step-000000050.pt.corrupt",
        "step-000000060.pt",
    ]


_OTHER_MODEL = """
import torch
from torch import nn
from modelport.training.task import TrainingTask, mlp_task

def wide():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))

def same_names():  # the built-in MLP's parameter names, other shapes
    from modelport.models.builtin import MLP
    model = MLP()
    model.hidden = nn.Linear(20, 128)
    model.output = nn.Linear(128, 10)
    return model

def training_task():
    return mlp_task()
"""


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            "wide",
            "is of another model (not in the checkpoint: 0.weight, 0.bias, 2.weight ...; not in this model: "
            "hidden.weight, hidden.bias, output.weight ...)",
        ),
        ("same_names", "of another model (hidden.weight [256, 20] torch.float32 there, [128, 20] torch.float32 here"),
    ],
)
def test_a_checkpoint_of_another_model_is_refused(  # type: ignore[no-untyped-def]
    uninterrupted: Path, tmp_path: Path, cli, model: str, expected: str
) -> None:
    (tmp_path / "other.py").write_text(_OTHER_MODEL)
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    _ckpt(out, 20).write_bytes(_ckpt(uninterrupted, 20).read_bytes())
    result = _train(cli, out, "--model", f"{tmp_path / 'other.py'}:{model}", *STEPS, "--resume")
    assert result.code == 2
    assert result.err.count("\n") == 1 and expected in result.err, result.err
    assert not (out / "weights.pt").exists()


@pytest.mark.parametrize(
    ("flags", "expected"), [(["--seed", "7"], "seed 0 there, 7 here"), (["--threads", "2"], "threads 1 there, 2 here")]
)
def test_a_checkpoint_of_another_run_is_refused(  # type: ignore[no-untyped-def]
    uninterrupted: Path, tmp_path: Path, cli, flags: list[str], expected: str
) -> None:
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    _ckpt(out, 20).write_bytes(_ckpt(uninterrupted, 20).read_bytes())
    result = _train(cli, out, *STEPS, "--resume", *flags)
    assert result.code == 2
    assert result.err.count("\n") == 1 and f"comes from another run ({expected})" in result.err, result.err


def test_a_model_without_a_task_is_refused_saying_how(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "plain.py").write_text("from torch import nn\n\ndef net():\n    return nn.Linear(3, 2)\n")
    result = _train(cli, tmp_path / "out", "--model", f"{tmp_path / 'plain.py'}:net", *STEPS)
    assert result.code == 2 and result.err.count("\n") == 1
    assert "defines no training_task(); add `def training_task() -> modelport.training.TrainingTask`" in result.err


def test_checkpoints_are_kept_only_m_and_never_overwritten_without_resume(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    assert _train(cli, out, "--steps", "50", "--checkpoint-every", "10", "--keep", "2").code == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000000040.pt", "step-000000050.pt"]
    again = _train(cli, out, "--steps", "50", "--checkpoint-every", "10")
    assert again.code == 2 and "already holds checkpoints (newest: step 50); pass --resume" in again.err
    past = _train(cli, out, "--steps", "30", "--checkpoint-every", "10", "--resume")
    assert past.code == 2 and "newest checkpoint is at step 50, past --steps 30" in past.err


def test_a_training_checkpoint_goes_through_run_weights(uninterrupted: Path, tmp_path: Path) -> None:
    from modelport.models import BUILTIN

    report = modelport.run(out=tmp_path / "a", weights=_ckpt(uninterrupted, 60), formats="state_dict", samples=0)
    assert report.verdict == "pass"
    state = torch.load(tmp_path / "a" / "state_dict.pt", weights_only=True)
    model = BUILTIN["mlp"].factory()
    model.load_state_dict(torch.load(uninterrupted / "weights.pt", weights_only=True))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


class _Net(torch.nn.Module):
    """A user's model that draws from the torch generator in training (dropout)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3))
        self.head = torch.nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.body(x))
        return out


def _user_loop(folder: Path, total: int, *, stop_at: int | None = None) -> dict[str, torch.Tensor]:
    """A plain PyTorch loop that draws from torch, numpy and Python's random; stops early to play a crash."""
    seed_everything(0)
    torch.manual_seed(0)
    model = _Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.97)
    ckpt = Checkpointer(folder, model, optimizer, scheduler, every=4, keep=2, settings={"seed": 0})
    start = ckpt.resume()
    for step in range(start, total):
        if step == stop_at:  # a crash: whatever the generators drew since the last checkpoint is lost
            seed_everything(12345)
            return {}
        x = torch.from_numpy(np.random.randn(16, 8).astype(np.float32))  # numpy's generator
        y = x.sum(dim=1, keepdim=True) * random.uniform(0.9, 1.1)  # Python's
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()  # torch's (dropout)
        optimizer.step()
        scheduler.step()
        ckpt.maybe_save(step + 1)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_checkpointer_in_a_plain_loop_resumes_exactly(tmp_path: Path) -> None:
    whole = _user_loop(tmp_path / "whole", 22)
    assert _user_loop(tmp_path / "crashed", 22, stop_at=10) == {}
    assert sorted(p.name for p in (tmp_path / "crashed").iterdir()) == ["step-000000004.pt", "step-000000008.pt"]
    resumed = _user_loop(tmp_path / "crashed", 22)
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_second_train_into_the_same_folder_is_refused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from modelport.pipeline.folder_lock import lock_path

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(  # another process holds the lock, as a running `modelport train` would
        [sys.executable, "-c", f"import fcntl, os, time; fd = os.open({str(lock_path(out))!r}, os.O_RDWR | "
         "os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = _train(cli, out, *STEPS)
        assert result.code == 2 and "is in use by modelport" in result.err, result.err
        assert not (out / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
