"""Quiet start: the CLI verbs print no warning a user cannot act on (issue 22). On a machine with a
CUDA toolkit but no GPU, importing ``torch.utils.benchmark`` logged "No CUDA runtime is found" at
every ``bench``; this machine is such a one, so the check is real here."""
import os
import subprocess
import sys

import pytest

from test_train import data_dir  # noqa: F401 - the tiny MNIST-format data set


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "cnnzoo", *args], capture_output=True, text=True, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("args", [
    ["bench", "lenet5_modern", "--batch-size", "2", "--rounds", "1", "--paths", "channels_last,bn_folded"],
    ["export", "lenet5_modern", "--format", "onnx", "--out", "m.onnx"],
])
def test_bench_and_export_start_quietly(tmp_path, args):
    assert _cli(*args, cwd=tmp_path).stderr == ""


def test_train_starts_quietly_and_says_its_numerics(tmp_path, data_dir):  # noqa: F811
    r = _cli("train", "lenet5_modern", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "1",
                  "--limit-train", "64", "--out", "run", "--quiet", cwd=tmp_path)
    assert r.stderr == ""
    # the suite measures no paths (conftest): the first allowed candidate, and why
    assert "numerics: fp32_cl: first of fp32_cl, fp32 (not measured)" in r.stdout
