"""The numerics selector (cnnzoo.numerics) on fake hardware: which paths are candidates, the
measured choice, forcing, and the per-machine cache; and the trainer that uses it."""
import json

import pytest

from cnnzoo import numerics as nm
from cnnzoo.training import Trainer, TrainConfig
from test_train import TINY, data_dir  # noqa: F401 - the tiny MNIST fixture

AVX2 = nm.Capabilities("cpu", "AMD EPYC 7B12", "AVX2", bf16=False)
AMX = nm.Capabilities("cpu", "Intel Xeon 8481C", "AVX512", bf16=True, flags=("amx_bf16", "avx512_bf16"))
T4 = nm.Capabilities("cuda", "Tesla T4", "sm_75", bf16=False, fp16=True)
H100 = nm.Capabilities("cuda", "NVIDIA H100", "sm_90", bf16=True, fp16=True)
ALL = ("bf16_cl", "fp16_cl", "fp32_cl", "fp32")
CFG = {"model": "vgg16", "input": [1, 32, 32], "batch_size": 128}


@pytest.fixture
def measured(monkeypatch):
    """Measuring on (the suite turns it off), and a fake measurement that records its calls."""
    monkeypatch.setenv("CNNZOO_MEASURE_NUMERICS", "1")
    calls = []

    def measure(speeds):
        def f(path):
            calls.append(path)
            return speeds[path]
        return f
    return measure, calls


@pytest.mark.parametrize("caps,kept", [
    (AVX2, ["fp32_cl", "fp32"]),                  # no native bf16: bf16 is never a candidate
    (AMX, ["bf16_cl", "fp32_cl", "fp32"]),        # native bf16; fp16 is for GPUs
    (T4, ["fp16_cl", "fp32_cl", "fp32"]),         # a GPU without bf16: fp16 (with a gradient scaler)
    (H100, ["bf16_cl", "fp32_cl", "fp32"]),       # bf16 where supported, not fp16
])
def test_candidates_follow_the_hardware(caps, kept):
    got, dropped = nm.candidates(ALL, caps)
    assert got == kept
    assert set(dropped) == set(ALL) - set(kept)
    if caps is AVX2:
        assert "no native bf16" in dropped["bf16_cl"] and "AVX2" in dropped["bf16_cl"]


def test_recipe_limits_the_candidates():
    assert nm.candidates(("fp32_cl", "fp32"), AMX)[0] == ["fp32_cl", "fp32"]   # lenet5_modern's: no bf16
    with pytest.raises(nm.NumericsError, match="unknown numeric path.*int8"):
        nm.candidates(("int8",), AMX)


def test_fastest_measured_is_chosen_and_cached(measured):
    measure, calls = measured
    speeds = {"bf16_cl": 2340.0, "fp32_cl": 1668.0, "fp32": 1200.0}
    c = nm.choose(ALL, CFG, measure(speeds), caps=AMX)
    assert (c.path, c.how, c.amp, c.channels_last) == ("bf16_cl", "measured", "bf16", True)
    assert calls == ["bf16_cl", "fp32_cl", "fp32"] and c.images_per_s == speeds
    assert "fastest of" in c.reason and "fp16_cl" in c.reason          # what was left out, and why
    # the same machine and configuration: read from the cache, nothing measured
    c2 = nm.choose(ALL, CFG, measure(speeds), caps=AMX)
    assert (c2.path, c2.how, c2.images_per_s) == ("bf16_cl", "cached", speeds) and len(calls) == 3
    # another configuration (batch size) is another entry
    nm.choose(ALL, {**CFG, "batch_size": 64}, measure(speeds), caps=AMX)
    assert len(calls) == 6
    entries = json.loads(nm.cache_file().read_text())["entries"]
    assert len(entries) == 2 and all(e["machine"] == nm.machine(AMX) for e in entries.values())


def test_on_avx2_the_slow_bf16_is_not_even_measured(measured):
    measure, calls = measured
    c = nm.choose(ALL, CFG, measure({"bf16_cl": 82.0, "fp32_cl": 960.0, "fp32": 794.0}), caps=AVX2)
    assert c.path == "fp32_cl" and calls == ["fp32_cl", "fp32"]


def test_an_entry_from_another_machine_is_never_used(measured):
    measure, calls = measured
    key = {**CFG, "candidates": ["fp32_cl", "fp32"]}
    other = {**nm.machine(AVX2), "name": "AMD EPYC 9654", "isa": "AVX512"}
    nm.store(other, key, "fp32", {"fp32_cl": 1.0, "fp32": 2.0})
    # a stale entry written under this machine's key but recording another machine: ignored too
    entries = json.loads(nm.cache_file().read_text())["entries"]
    stale = next(iter(entries.values()))
    entries[nm._key(nm.machine(AVX2), key)] = stale
    nm.cache_file().write_text(json.dumps({"version": nm.CACHE_VERSION, "entries": entries}))
    assert nm.cached(nm.machine(AVX2), key) is None
    c = nm.choose(ALL, CFG, measure({"fp32_cl": 960.0, "fp32": 794.0}), caps=AVX2)
    assert (c.path, c.how) == ("fp32_cl", "measured") and calls == ["fp32_cl", "fp32"]


def test_a_corrupt_cache_is_measured_again(measured):
    measure, calls = measured
    nm.cache_file().parent.mkdir(parents=True, exist_ok=True)
    nm.cache_file().write_text("{not json")
    assert nm.choose(ALL, CFG, measure({"fp32_cl": 1.0, "fp32": 2.0}), caps=AVX2).path == "fp32"
    assert nm.choose(ALL, CFG, measure({"fp32_cl": 1.0, "fp32": 2.0}), caps=AVX2).how == "cached"


def test_flags_force_a_path(measured):
    measure, calls = measured
    c = nm.choose(ALL, CFG, measure({}), caps=AVX2, amp="bf16", channels_last=True)
    assert (c.path, c.how) == ("bf16_cl", "forced") and calls == []
    assert "--amp bf16 --channels-last" in c.reason and "emulated" in c.reason   # said, not refused
    # --amp alone keeps the candidates that agree with it; one left: no measurement
    c = nm.choose(ALL, CFG, measure({}), caps=AVX2, amp="fp32", channels_last=False)
    assert c.path == "fp32" and c.how == "forced"
    c = nm.choose(("fp32_cl", "fp32"), CFG, measure({}), caps=AMX, channels_last=False)
    assert (c.path, c.how) == ("fp32", "only") and "--no-channels-last" in c.reason
    c = nm.choose(ALL, CFG, measure({"fp32_cl": 5.0, "fp32": 9.0}), caps=AMX, amp="fp32")
    assert (c.path, c.how) == ("fp32", "measured") and calls == ["fp32_cl", "fp32"]


def test_measuring_off_takes_the_first_candidate(monkeypatch):
    monkeypatch.setenv("CNNZOO_MEASURE_NUMERICS", "0")
    c = nm.choose(ALL, CFG, lambda p: pytest.fail("measured"), caps=AMX)
    assert (c.path, c.how) == ("bf16_cl", "unmeasured")
    assert nm.choose(ALL, CFG, None, caps=AVX2).path == "fp32_cl"


def test_cpu_flags_read_x86_and_arm(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
                   "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU part\t: 0xd40\n")
    flags, name = nm.cpu_flags(x86)
    assert {"amx_bf16", "avx512_bf16"} <= flags and name == "Intel(R) Xeon(R) Platinum 8481C"
    assert "bf16" in nm.cpu_flags(arm)[0]
    assert nm.cpu_flags(tmp_path / "missing")[0] == set()


def test_trainer_records_its_choice(data_dir, tmp_path, monkeypatch, capsys):  # noqa: F811
    """A tiny run measures its two fp32 paths on a fake AVX2 CPU, records the choice in
    metrics.json and the checkpoint, prints it, and a second run reads it from the cache."""
    monkeypatch.setenv("CNNZOO_MEASURE_NUMERICS", "1")
    monkeypatch.setattr(nm, "capabilities", lambda device="cpu": AVX2)
    timed = []
    real = Trainer.measure_numerics
    monkeypatch.setattr(Trainer, "measure_numerics", lambda self, p, steps=1: timed.append(p) or real(self, p, steps))
    opts = {**TINY, "amp": None, "epochs": 1, "numerics": list(ALL)}
    t = Trainer(TrainConfig(model="lenet5_modern", data_dir=data_dir, **opts), tmp_path / "a", progress=True)
    assert timed == ["fp32_cl", "fp32"] and t.numerics.how == "measured"
    assert (t.cfg.amp, t.cfg.channels_last) == (t.numerics.amp, t.numerics.channels_last)
    summary = t.fit()
    assert summary["numerics"]["path"] == t.numerics.path and "bf16_cl" in summary["numerics"]["left_out"]
    assert f"numerics: {t.numerics.reason}" in capsys.readouterr().out
    t2 = Trainer(TrainConfig(model="lenet5_modern", data_dir=data_dir, **opts), tmp_path / "b", progress=False)
    assert t2.numerics.how == "cached" and t2.numerics.path == t.numerics.path and len(timed) == 2
