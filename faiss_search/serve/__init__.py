"""`fsearch serve`: the model (and optionally an index) behind an OpenAI-compatible HTTP API.

Routes: ``POST /v1/embeddings`` (OpenAI format), ``GET /v1/models`` (and ``/v1/models/{id}``),
``POST /v1/search`` (the objects of ``fsearch search --json``), ``GET /health`` (liveness),
``GET /ready`` (readiness: model loaded, index open) and ``GET /metrics`` (Prometheus).

Requests are validated by typed models; every error, ours or the framework's, is an
OpenAI-style JSON body: client faults 4xx, server faults 5xx. Two lanes embed: one for short
requests (queries), one for the rest, each taking a slice of each waiting request in turn,
so a big request is split into batches and never holds a query up for long; a request whose
client went away is dropped, and one that outlives its time budget is answered with an error.

Modules: ``app`` (the routes), ``api`` (requests and errors), ``scheduler`` (the lanes), ``edge``
(what every request passes first, and the server), ``metrics``, and ``mcp`` (the MCP server).
"""
