"""Fixtures for every test: no test writes to the user's cache or measures numeric paths."""
import pytest


@pytest.fixture(autouse=True)
def _numerics_unmeasured(tmp_path, monkeypatch):
    """Numeric paths are not timed (the first candidate of cnnzoo.numerics is used, as before the
    selector: deterministic), and the selector's cache lives in the test's own temporary folder."""
    monkeypatch.setenv("CNNZOO_MEASURE_NUMERICS", "0")
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cnnzoo-cache"))
