"""`micro api`: an HTTP/JSON gateway in front of every service in the registry.

Modules: `templates` (google.api.http path templates), `routes` (the route table from the
registry), `transcode` (HTTP <-> messages, proto3 JSON), `errors` (error mapping),
`headers` (metadata allowlist, timeout header), `streaming` (NDJSON / SSE), `catalog`
(message types over reflection), `app` (the starlette app), `serve` (uvicorn).

Only `app` and `serve` need the `api` extra (starlette, uvicorn); `micro api routes` works
without it.
"""
