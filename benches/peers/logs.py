"""Drain3 lines/s on one log file, with Drain3's standard masking list and
without masking; one core, the best run of at least 5 within 3 s. Prints one JSON object.

Usage: python logs.py FILE
(was benches/drain3_baseline.py)
The warden side is `cargo run --release -p warden-bench --example peers -- logs FILE`.
"""
import json
import sys
import time

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

# The masking list of Drain3's example configuration (drain3.ini in the
# logpai/Drain3 repository), which its README calls the standard one.
BOUNDARY_L = r"((?<=[^A-Za-z0-9])|^)"
BOUNDARY_R = r"((?=[^A-Za-z0-9])|$)"
STANDARD_MASKING = [
    (BOUNDARY_L + r"(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))" + BOUNDARY_R, "ID"),
    (BOUNDARY_L + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})" + BOUNDARY_R, "IP"),
    (BOUNDARY_L + r"([0-9a-f]{6,} ?){3,}" + BOUNDARY_R, "SEQ"),
    (BOUNDARY_L + r"([0-9A-F]{4} ?){4,}" + BOUNDARY_R, "SEQ"),
    (BOUNDARY_L + r"(0x[a-f0-9A-F]+)" + BOUNDARY_R, "HEX"),
    (BOUNDARY_L + r"([\-\+]?\d+)" + BOUNDARY_R, "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


BUDGET_S = 3.0
MIN_RUNS = 5


def best_rate(lines, masking):
    # The best run within a time budget, as the warden side does: this VM's
    # speed moves by 2x between runs, and a few runs may all be slow ones.
    best = float("inf")
    clusters = 0
    runs = 0
    budget_end = time.perf_counter() + BUDGET_S
    while runs < MIN_RUNS or time.perf_counter() < budget_end:
        runs += 1
        config = TemplateMinerConfig()
        config.profiling_enabled = False
        config.masking_instructions = [MaskingInstruction(p, m) for p, m in masking]
        miner = TemplateMiner(config=config)
        start = time.perf_counter()
        for line in lines:
            miner.add_log_message(line)
        best = min(best, time.perf_counter() - start)
        clusters = len(miner.drain.clusters)
    return {"lines_per_s": len(lines) / best, "ms": best * 1e3, "templates": clusters}


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    print(json.dumps({
        "file": path,
        "lines": len(lines),
        "drain3_masked": best_rate(lines, STANDARD_MASKING),
        "drain3_unmasked": best_rate(lines, []),
    }))


if __name__ == "__main__":
    main()
