"""Load test of `fsearch serve` on loopback: requests/s and latency of /v1/embeddings and /v1/search.

    python bench/serve_load.py                       # 8 concurrent clients, 400 requests per route
    python bench/serve_load.py --clients 16 --requests 800

Starts its own server on 127.0.0.1 (a free port) over an index of data/docs.txt, sends a
bounded number of requests, and stops everything. Nothing leaves the machine.
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


def load(url: str, bodies: list[dict], clients: int) -> tuple[float, float, float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(lambda body: call(url, body), bodies))
    elapsed = time.perf_counter() - started
    return len(bodies) / elapsed, 1000 * latencies[len(latencies) // 2], 1000 * latencies[int(0.95 * len(latencies))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FSEARCH_HOME": home}
        subprocess.run([FSEARCH, "index", str(ROOT / "data" / "docs.txt")], env=env, check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen([FSEARCH, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/health", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            n = args.requests
            rows = [
                ("/v1/embeddings, 1 short text per request", f"{base}/v1/embeddings",
                 [{"model": "m", "input": QUESTIONS[i % len(QUESTIONS)] + str(i)} for i in range(n)]),
                ("/v1/embeddings, 16 texts per request", f"{base}/v1/embeddings",
                 [{"model": "m", "input": [q + str(i) for q in QUESTIONS * 2]} for i in range(n // 8)]),
                ("/v1/search (hybrid, top 3)", f"{base}/v1/search",
                 [{"query": QUESTIONS[i % len(QUESTIONS)] + str(i), "top_k": 3} for i in range(n)]),
            ]
            print(f"Machine: {os.cpu_count()} cores; {args.clients} concurrent clients on loopback\n")
            print("| route | requests | requests/s | p50 ms | p95 ms |\n|---|---|---|---|---|")
            for name, url, bodies in rows:
                load(url, bodies[: args.clients], args.clients)  # warm-up
                rate, p50, p95 = load(url, bodies, args.clients)
                print(f"| {name} | {len(bodies)} | {rate:.1f} | {p50:.0f} | {p95:.0f} |")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
