"""Load test of `fsearch serve` on loopback: throughput and p50/p95/p99 latency, and fairness.

    python bench/serve_load.py                         # 1, 8 and 32 clients, 256 requests per route
    python bench/serve_load.py --clients 8 --requests 400

Starts its own server on 127.0.0.1 (a free port) over an index of data/docs.txt, sends a
bounded number of requests, and stops everything. Nothing leaves the machine. The mixed
case sends one request at the limits of a normal client (40 inputs of 500 characters) while
one client keeps sending one short query at a time, and compares those queries' latency with
their latency alone.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FSEARCH = str(Path(sys.executable).with_name("fsearch"))
QUESTIONS = ["坐火车去别的城市", "熊猫吃什么", "how do I bake bread", "信用卡利息怎么算", "what is git for",
             "喝茶有什么讲究", "solar eclipse", "孩子发烧怎么办"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - started


def load(url: str, bodies: list[dict], clients: int) -> tuple[float, list[float]]:
    """Requests per second and the sorted latencies (ms)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(1000 * t for t in pool.map(lambda body: call(url, body), bodies))
    return len(bodies) / (time.perf_counter() - started), latencies


def percentile(latencies: list[float], share: float) -> float:
    return latencies[min(len(latencies) - 1, int(share * len(latencies)))]


def row(name: str, clients: int, count: int, rate: float, latencies: list[float]) -> str:
    return (f"| {name} | {clients} | {count} | {rate:.1f} | "
            + " | ".join(f"{percentile(latencies, q):.0f}" for q in (0.5, 0.95, 0.99)) + " |")


def mixed(base: str, small: int) -> tuple[list[float], list[float], float]:
    """Short queries alone, then while a 40 x 500-character request runs; returns both latencies (ms)."""
    query = {"model": "m", "input": "熊猫吃什么", "input_type": "query"}
    alone = sorted(1000 * call(f"{base}/v1/embeddings", query) for _ in range(small))
    big = {"model": "m", "input": ["大熊猫生活在四川的山里，每天吃很多竹子。" * 25] * 40}
    during: list[float] = []
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(call, f"{base}/v1/embeddings", big)
        time.sleep(0.2)
        while not running.done():
            during.append(1000 * call(f"{base}/v1/embeddings", query))
        big_seconds = running.result()
    return alone, sorted(during), big_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, action="append", help="repeatable [default: 1, 8 and 32]")
    parser.add_argument("--requests", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FSEARCH_HOME": home}
        subprocess.run([FSEARCH, "index", str(ROOT / "data" / "docs.txt")], env=env, check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen([FSEARCH, "serve", "--port", str(port), "--no-access-log"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/ready", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            n = args.requests
            routes = [
                ("/v1/embeddings, 1 short text", f"{base}/v1/embeddings",
                 [{"model": "m", "input": QUESTIONS[i % len(QUESTIONS)] + str(i)} for i in range(n)]),
                ("/v1/embeddings, 16 texts", f"{base}/v1/embeddings",
                 [{"model": "m", "input": [q + str(i) for q in QUESTIONS * 2]} for i in range(n // 8)]),
                ("/v1/search (hybrid, top 3)", f"{base}/v1/search",
                 [{"query": QUESTIONS[i % len(QUESTIONS)] + str(i), "top_k": 3} for i in range(n)]),
            ]
            print(f"Machine: {os.cpu_count()} cores; clients on loopback\n")
            print("| route | clients | requests | requests/s | p50 ms | p95 ms | p99 ms |")
            print("|---|---|---|---|---|---|---|")
            for clients in args.clients or [1, 8, 32]:
                for name, url, bodies in routes:
                    load(url, bodies[:clients], clients)  # warm-up
                    rate, latencies = load(url, bodies, clients)
                    print(row(name, clients, len(bodies), rate, latencies), flush=True)
            alone, during, big_seconds = mixed(base, 50)
            print("\nMixed: one short query at a time, alone and while a 40 x 500-character request runs "
                  f"({big_seconds:.1f} s)\n")
            print("| short queries | count | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
            for name, latencies in (("alone", alone), ("during the big request", during)):
                print(f"| {name} | {len(latencies)} | "
                      + " | ".join(f"{percentile(latencies, q):.0f}" for q in (0.5, 0.95, 0.99)) + " |")
            print(f"\np95 during / p95 alone: {percentile(during, 0.95) / percentile(alone, 0.95):.1f}x")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
