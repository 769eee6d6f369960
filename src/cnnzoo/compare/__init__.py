"""The lecture's closing comparison (L31, L32) measured on this machine: latency, memory,
accuracy against operations, a report with plots."""
from .job import DEFAULT_MODELS, PRESETS, CompareError, Preset, compare
from .latency import (PATHS, LatencyOptionError, LatencyResult, MemoryResult, available_paths, fastest_path,
                      measure_latency, peak_memory)

__all__ = ["compare", "Preset", "PRESETS", "DEFAULT_MODELS", "CompareError", "PATHS", "LatencyResult",
           "LatencyOptionError", "MemoryResult", "measure_latency", "fastest_path", "peak_memory", "available_paths"]
