"""The vector-index peer: hnswlib on the vectors warden searches.

Usage:
  python vectors.py gen DIR N [QUERIES]   writes DIR/{data,queries}.f32 and DIR/truth.u32
  python vectors.py hnswlib DIR           builds and queries hnswlib, prints JSON

`gen` draws N unit vectors of a 384-d Gaussian mixture (1,000 unit centers,
isotropic noise of norm ~0.75, as in benches/memory.rs) and QUERIES more
from the same mixture with a fixed seed, then the exact top 10 of each query
by brute force (numpy, float32). Files are little-endian, row-major, with no
header; `meta.json` gives the shapes. Both sides score recall@10 against
the same truth file.
"""
import json
import os
import sys
import time

import numpy as np

DIM = 384
CENTERS = 1_000
K = 10
M = 16
EF_CONSTRUCTION = 100
EF_SWEEP = [16, 24, 32, 48, 64, 96, 128, 192, 256]


def mixture(rng, centers, n):
    which = rng.integers(0, CENTERS, size=n)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 50_000):
        end = min(n, start + 50_000)
        noise = rng.standard_normal((end - start, DIM), dtype=np.float32) * (0.75 / np.sqrt(DIM))
        v = centers[which[start:end]] + noise
        out[start:end] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def truth(data, queries):
    out = np.empty((len(queries), K), dtype=np.uint32)
    for start in range(0, len(queries), 100):
        sims = queries[start:start + 100] @ data.T
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start:start + 100] = np.take_along_axis(top, order, axis=1)
    return out


def gen(directory, n, queries):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(42)
    centers = rng.standard_normal((CENTERS, DIM), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    data = mixture(rng, centers, n)
    qs = mixture(rng, centers, queries)
    data.tofile(os.path.join(directory, "data.f32"))
    qs.tofile(os.path.join(directory, "queries.f32"))
    truth(data, qs).tofile(os.path.join(directory, "truth.u32"))
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump({"n": n, "queries": queries, "dim": DIM, "k": K}, f)


def load(directory):
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    data = np.fromfile(os.path.join(directory, "data.f32"), dtype=np.float32).reshape(meta["n"], DIM)
    qs = np.fromfile(os.path.join(directory, "queries.f32"), dtype=np.float32).reshape(meta["queries"], DIM)
    gt = np.fromfile(os.path.join(directory, "truth.u32"), dtype=np.uint32).reshape(meta["queries"], K)
    return data, qs, gt


def bench_hnswlib(directory):
    import hnswlib

    data, qs, gt = load(directory)
    index = hnswlib.Index(space="ip", dim=DIM)  # 1 - a.b: cosine on unit vectors
    index.init_index(max_elements=len(data), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    started = time.perf_counter()
    index.add_items(data, np.arange(len(data)))  # all cores, as warden's build
    build = time.perf_counter() - started
    index.set_num_threads(1)
    rows = []
    for ef in EF_SWEEP:
        index.set_ef(ef)
        index.knn_query(qs[:100], k=K)  # warm up
        # Throughput: one batch call on one thread, no per-query Python cost.
        started = time.perf_counter()
        labels, _ = index.knn_query(qs, k=K, num_threads=1)
        qps = len(qs) / (time.perf_counter() - started)
        # Latency: one call per query; includes ~2-5 us of Python call overhead.
        lat = []
        for q in qs:
            t = time.perf_counter()
            index.knn_query(q, k=K, num_threads=1)
            lat.append(time.perf_counter() - t)
        lat.sort()
        recall = np.mean([len(set(labels[i]) & set(gt[i])) / K for i in range(len(qs))])
        rows.append({
            "ef": ef,
            "qps": qps,
            "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
            "recall": float(recall),
        })
    print(json.dumps({"engine": "hnswlib", "n": len(data), "build_s": build, "rows": rows}))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1_000)
    elif sys.argv[1] == "hnswlib":
        bench_hnswlib(sys.argv[2])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
