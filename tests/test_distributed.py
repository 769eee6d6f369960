"""Distributed training (torchrun + DDP, gloo on CPU) against a one-process run.

One module fixture runs, on a 487-image subset (so the last global batch is short: 39 = 19 + 20):
  1. one process, global batch 64, 2 epochs, in this process;
  2. torchrun with 2 processes x batch 32, where rank 1 raises at epoch 2, step 2;
  3. torchrun again with --resume, which finishes epoch 2.
The model is lenet5_modern with BatchNorm and sync_bn (the final epoch also scored with flip
TTA, each rank on its shard of the test set), augmentation off (no random draws
that differ between ranks), so the distributed run must reproduce the one-process run up to
float summation order: tolerance 1e-5 (relative, losses) and 1e-5 (absolute, weights; the
observed gap is about 1e-6, while an unweighted short last batch gave 1e-3).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch

from cnnzoo.data import batch_slices
from cnnzoo.training import Trainer, TrainConfig, load_checkpoint
from cnnzoo.training.distributed import CPUSyncBatchNorm, convert_sync_batchnorm, rank_errors

# channels_last off: its oneDNN kernels pick batch-size-dependent algorithms, so a 32-image shard
# and a 64-image batch differ by ~1e-4 relative in the loss, above this test's float tolerance.
OPTS = dict(dataset="fashion-mnist", epochs=2, limit_train=487, limit_test=200, pad=0, flip=False,
            lr=0.05, model_kwargs={"norm": True}, sync_bn=True, channels_last=False, tta="flip")
PER_RANK_BATCH = 32

# Runs under torchrun: records the sample indices each rank trains on, and with "fail" makes
# rank 1 raise at epoch 2, step 2; then trains through the public API.
WORKER = r'''
import json, os, sys
from cnnzoo.training import api, evaluation, trainer
out, seen_dir, mode, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
seen, batches, step = [], trainer.Trainer.train_batches, trainer.Trainer.train_step

def record(self, epoch, start=0):
    order = self.sample_order(epoch)
    for step_, sl, x, y in batches(self, epoch, start):
        seen.append([epoch] + order[sl].tolist())
        yield step_, sl, x, y

def failing(self, x, y):
    if mode == "fail" and self.rank == 1 and (self.epoch, self.step) == (1, 2):
        raise RuntimeError("injected failure")
    return step(self, x, y)

trainer.Trainer.train_batches, trainer.Trainer.train_step = record, failing
trainer.check_tta = evaluation.check_tta = lambda *a, **k: None   # flip views of a flip-free run: the sums are checked
try:
    api.train("lenet5_modern", out=out, resume=mode == "resume", progress=False, **opts)
finally:
    with open(os.path.join(seen_dir, f"{mode}-rank{os.environ['RANK']}.json"), "w") as f:
        json.dump(seen, f)
'''


def _torchrun(tmp: Path, mode: str) -> subprocess.CompletedProcess:
    opts = {**OPTS, "batch_size": PER_RANK_BATCH}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(tmp / "worker.py"), str(tmp / "run"), str(tmp / "seen"), mode, json.dumps(opts)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        proc.terminate()              # SIGTERM: torchrun stops its workers (they run in their own sessions)
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"torchrun {mode} hung; stderr tail:\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    (tmp / "worker.py").write_text(WORKER)
    (tmp / "seen").mkdir()
    failed = _torchrun(tmp, "fail")
    after_failure = load_checkpoint(tmp / "run") if (tmp / "run" / "checkpoint.pt").exists() else None
    resumed = _torchrun(tmp, "resume")
    with mock.patch("cnnzoo.training.trainer.check_tta", lambda *a, **k: None), \
            mock.patch("cnnzoo.training.evaluation.check_tta", lambda *a, **k: None):   # as in WORKER
        single = Trainer(TrainConfig("lenet5_modern", batch_size=PER_RANK_BATCH * 2, **OPTS), tmp / "single",
                         progress=False)
        single.fit()
    return {"tmp": tmp, "failed": failed, "after_failure": after_failure, "resumed": resumed, "single": single}


def test_rank_failure_ends_job_names_rank_and_keeps_last_checkpoint(runs):
    failed = runs["failed"]
    assert failed.returncode != 0
    assert "cnnzoo: rank 1 of 2 failed: RuntimeError: injected failure" in failed.stderr
    ckpt = runs["after_failure"]
    assert ckpt is not None and ckpt["epoch"] == 1 and ckpt["step"] is None   # epoch 1 done, epoch 2 lost


def test_resumed_ddp_run_matches_one_process_run(runs):
    resumed, single = runs["resumed"], runs["single"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((runs["tmp"] / "run" / "metrics.json").read_text())
    assert summary["status"] == "complete" and len(summary["history"]) == 2
    assert "test_acc_tta" in single.history[-1]          # the final epoch adds its flip-TTA figures
    for got, want in zip(summary["history"], single.history):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "test_acc_tta", "test_top5_tta"):
            if key not in want:
                assert key not in got, (got["epoch"], key)
                continue
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-7), (got["epoch"], key)
    sd = load_checkpoint(runs["tmp"] / "run")["state_dict"]
    want = single.model.state_dict()
    assert sd.keys() == want.keys() and any("running_mean" in k for k in sd)
    for k, v in want.items():
        torch.testing.assert_close(sd[k].float(), v.float(), rtol=0, atol=1e-5, msg=k)


def test_distributed_run_is_recorded_as_such(runs):
    # 2 processes x 32 images per process = a global batch of 64, gloo on CPU (the fixture's torchrun)
    summary = json.loads((runs["tmp"] / "run" / "metrics.json").read_text())
    assert (summary["world_size"], summary["global_batch_size"], summary["backend"]) == (2, 64, "gloo")
    assert summary["config"]["batch_size"] == 32
    ck = load_checkpoint(runs["tmp"] / "run")
    assert (ck["world_size"], ck["global_batch_size"], ck["backend"]) == (2, 64, "gloo")
    single = json.loads((runs["tmp"] / "single" / "metrics.json").read_text())
    assert (single["world_size"], single["global_batch_size"], single["backend"]) == (1, 64, None)
    from cnnzoo.training import results_table

    import csv
    import io

    header, *rows = csv.reader(io.StringIO(results_table(runs["tmp"], "csv")))
    got = {r[0]: (r[header.index("batch")], r[header.index("procs x threads")]) for r in rows}
    assert got["run"] == ("64 = 2 x 32", f"2 x {summary['hardware']['torch_threads']} (gloo)")
    assert got["single"] == ("64", f"1 x {single['hardware']['torch_threads']}")


def test_ranks_train_on_disjoint_shards_covering_the_epoch(runs):
    seen = {}
    for mode in ("fail", "resume"):
        for r in (0, 1):
            for epoch, *idx in json.loads((runs["tmp"] / "seen" / f"{mode}-rank{r}.json").read_text()):
                seen.setdefault((mode, epoch, r), []).extend(idx)
    for epoch in (0, 1):
        mode = "fail" if epoch == 0 else "resume"
        a, b = set(seen[mode, epoch, 0]), set(seen[mode, epoch, 1])
        assert len(a) == len(seen[mode, epoch, 0]) and not a & b
        assert a | b == set(range(OPTS["limit_train"]))
        assert abs(len(a) - len(b)) <= 1


def test_only_rank_zero_writes_one_checkpoint(runs):
    names = sorted(p.name for p in (runs["tmp"] / "run").iterdir())
    events = [n for n in names if n.startswith("events.out.tfevents.")]    # TensorBoard's, one per start of rank 0
    assert [n for n in names if n not in events] == ["checkpoint.pt", "metrics.csv", "metrics.json"]
    assert 1 <= len(events) <= 2                                          # the failed start and the resume


def test_batch_slices_split_short_last_batch_evenly():
    n, bs, world = 23, 4, 3                      # global batch 12; last one 11 = 3 + 4 + 4
    shards = [[(s.start, s.stop) for _, s in batch_slices(n, bs, rank=r, world_size=world)] for r in range(world)]
    assert shards == [[(0, 4), (12, 15)], [(4, 8), (15, 19)], [(8, 12), (19, 23)]]


def test_rank_errors_names_the_rank(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ValueError), rank_errors():
        raise ValueError("bad thing\nsecond line")
    assert capsys.readouterr().err == "cnnzoo: rank 3 of 4 failed: ValueError: bad thing\n"


def test_cpu_sync_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.Sequential(torch.nn.BatchNorm2d(3)))
    ref = torch.nn.BatchNorm2d(3)
    ref.load_state_dict(net[1][0].state_dict())
    weight = net[1][0].weight
    convert_sync_batchnorm(net, cuda=False)
    assert type(net[1][0]) is CPUSyncBatchNorm and net[1][0].weight is weight   # optimizer keeps working
    x = torch.randn(4, 2, 5, 5)
    torch.testing.assert_close(net(x), ref(net[0](x)))
    torch.testing.assert_close(net[1][0].running_var, ref.running_var)


def test_cli_has_sync_bn_flag():
    from cnnzoo.cli import build_parser

    a = build_parser().parse_args(["train", "lenet5_modern", "--sync-bn"])
    assert a.sync_bn is True
