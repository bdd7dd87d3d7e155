"""Prints the peer comparison (benches/peers/run.sh) as Markdown tables.

Usage: python report.py DIR   (DIR holds the *-peer.json and *-warden.json files)
"""
import json
import os
import sys


def load(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def logs(d):
    peer, warden = load(d, "logs-peer.json"), load(d, "logs-warden.json")
    if not (peer and warden):
        return
    w = warden["lines_per_s"]
    print(f"\n### Log mining: {os.path.basename(peer['file'])}, {peer['lines']} lines, one core\n")
    print("| engine | lines/s | templates | warden / engine |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| warden-logmine `mine` | {w:,.0f} | {warden['templates']} | 1.0x |")
    for key, label in [("drain3_masked", "Drain3, standard masking"), ("drain3_unmasked", "Drain3, no masking")]:
        r = peer[key]
        print(f"| {label} | {r['lines_per_s']:,.0f} | {r['templates']} | {w / r['lines_per_s']:.1f}x |")


def vectors(d):
    peer, warden = load(d, "vectors-peer.json"), load(d, "vectors-warden.json")
    if not (peer and warden):
        return
    print(f"\n### Vector index: {warden['n']:,} x 384-d mixture (isotropic), M 16, ef_construction 100, k 10, one query thread\n")
    print(f"Build (all cores): warden {warden['build_s']:.1f} s, hnswlib {peer['build_s']:.1f} s.\n")
    print("| ef | warden QPS | hnswlib QPS | QPS ratio | warden p50 | hnswlib p50 | warden recall@10 | hnswlib recall@10 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w, p in zip(warden["rows"], peer["rows"]):
        print(
            f"| {w['ef']} | {w['qps']:,.0f} | {p['qps']:,.0f} | {w['qps'] / p['qps']:.2f} | "
            f"{w['p50_ms']:.3f} ms | {p['p50_ms']:.3f} ms | {w['recall']:.4f} | {p['recall']:.4f} |"
        )
    # Equal recall: the fastest warden row that reaches each hnswlib row's recall.
    print("\nAt equal recall@10 (warden's fastest ef reaching hnswlib's recall at that ef):\n")
    print("| hnswlib ef | recall@10 | hnswlib QPS | warden ef | warden QPS | ratio |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in peer["rows"]:
        match = [w for w in warden["rows"] if w["recall"] >= p["recall"] - 1e-9]
        if match:
            w = max(match, key=lambda r: r["qps"])
            print(f"| {p['ef']} | {p['recall']:.4f} | {p['qps']:,.0f} | {w['ef']} | {w['qps']:,.0f} | {w['qps'] / p['qps']:.2f} |")
        else:
            print(f"| {p['ef']} | {p['recall']:.4f} | {p['qps']:,.0f} | - | - | not reached |")


def agent(d):
    peer, warden = load(d, "agent-peer.json"), load(d, "agent-warden.json")
    if not (peer and warden):
        return
    print("\n### Agent step vs a do-nothing LangGraph node, one core\n")
    print("| measure | warden | LangGraph | warden / LangGraph |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| task of 1 step / graph of 1 node | {warden['task_1_step_us']:.0f} us | {peer['invoke_1_node_us']:.0f} us | "
        f"{warden['task_1_step_us'] / peer['invoke_1_node_us']:.2f} |"
    )
    print(
        f"| marginal step / node ((t21 - t1) / 20) | {warden['per_step_us']:.0f} us | {peer['per_node_us']:.0f} us | "
        f"{warden['per_step_us'] / peer['per_node_us']:.2f} |"
    )
    tmpfs = load(d, "agent-warden-tmpfs.json")
    if tmpfs:
        print(
            f"| task of 1 step, journal on tmpfs (no real fsync) | {tmpfs['task_1_step_us']:.0f} us | {peer['invoke_1_node_us']:.0f} us | "
            f"{tmpfs['task_1_step_us'] / peer['invoke_1_node_us']:.2f} |"
        )
        print(
            f"| marginal step, journal on tmpfs | {tmpfs['per_step_us']:.0f} us | {peer['per_node_us']:.0f} us | "
            f"{tmpfs['per_step_us'] / peer['per_node_us']:.2f} |"
        )
    print("\nA warden task journals a keyed checkpoint with fsync at its end; a step journals its decision and its call (no fsync).")


if __name__ == "__main__":
    logs(sys.argv[1])
    vectors(sys.argv[1])
    agent(sys.argv[1])
