"""The agent-step peer: a LangGraph StateGraph whose nodes do nothing.

Usage: python agent.py
Prints per-invoke µs of a one-node graph and the marginal µs per node of a
21-node chain, (t21 - t1) / 20: the same split as warden's agent step in
`cargo run --release -p warden-bench --example peers -- agent`.
"""
import json
import time
from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    task: str
    observation: str


def noop(state: State) -> dict:
    return {}


def chain(n):
    graph = StateGraph(State)
    for i in range(n):
        graph.add_node(f"s{i}", noop)
    graph.add_edge(START, "s0")
    for i in range(1, n):
        graph.add_edge(f"s{i - 1}", f"s{i}")
    graph.add_edge(f"s{n - 1}", END)
    return graph.compile()


def per_invoke_us(app, rounds):
    for _ in range(50):
        app.invoke({"task": "t-0", "observation": ""})
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for i in range(rounds):
            app.invoke({"task": f"t-{i}", "observation": ""})
        best = min(best, (time.perf_counter() - started) / rounds)
    return best * 1e6


def main():
    one = per_invoke_us(chain(1), 400)
    many = per_invoke_us(chain(21), 60)
    print(json.dumps({
        "engine": "langgraph",
        "invoke_1_node_us": one,
        "invoke_21_nodes_us": many,
        "per_node_us": (many - one) / 20,
    }))


if __name__ == "__main__":
    main()
