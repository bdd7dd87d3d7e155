"""Drain3 lines/s on a Loghub 2k file (the baseline for benches/plugin_call.rs).

Usage: python3 benches/drain3_baseline.py [../shared/data/loghub/HDFS/HDFS_2k.log]
Needs `pip install drain3`. One core, same file, best of 5 runs.
"""
import sys
import time

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/loghub/HDFS/HDFS_2k.log"
lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
best = float("inf")
for _ in range(5):
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    start = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    best = min(best, time.perf_counter() - start)
print(f"drain3: {len(lines)} lines in {best * 1000:.1f} ms = {len(lines) / best:,.0f} lines/s")
