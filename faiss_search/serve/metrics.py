"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

    def __init__(self, model_name: str, dim: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = CollectorRegistry()
        self.requests = Counter("fsearch_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("fsearch_request_seconds", "Request latency by route", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
                                 registry=self.registry)
        self.batch_size = Histogram("fsearch_batch_texts", "Texts per encode call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.inputs = Counter("fsearch_inputs", "Texts embedded (rate() gives inputs per second)",
                              registry=self.registry)
        self.tokens = Counter("fsearch_tokens", "Tokens embedded (rate() gives tokens per second)",
                              registry=self.registry)
        self.rerank_pairs = Counter("fsearch_rerank_pairs", "(query, document) pairs reranked",
                                    registry=self.registry)
        self.queue = Gauge("fsearch_queue_texts", "Texts waiting to be embedded", registry=self.registry)
        self.index_chunks = Gauge("fsearch_index_chunks", "Chunks in the served index", registry=self.registry)
        Info("fsearch_model", "The served model", registry=self.registry).info({"name": model_name,
                                                                                "dim": str(dim)})
