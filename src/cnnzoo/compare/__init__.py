"""The lecture's closing comparison (L31, L32) measured on this machine: latency, memory,
accuracy against operations, a report with plots; and at ImageNet scale, published accuracy
(torchvision's weight metadata, the papers' tables) against the analyzer's cost and this
machine's timing."""
from .job import DEFAULT_MODELS, PRESETS, CompareError, Preset, compare
from .latency import (LatencyOptionError, LatencyResult, MemoryResult, batch_curve, fastest_path, measure_latency,
                      peak_memory, timing_paths)
from .published import PAPER_FIGURES, accuracy_rows

__all__ = ["compare", "Preset", "PRESETS", "DEFAULT_MODELS", "CompareError", "LatencyResult",
           "LatencyOptionError", "MemoryResult", "measure_latency", "fastest_path", "batch_curve", "peak_memory",
           "timing_paths", "PAPER_FIGURES", "accuracy_rows"]
