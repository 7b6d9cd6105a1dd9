"""The ceiling of any endpoint on this stack: FastAPI reads a body of events and parses it.

``benchmarks/bench_ingest.py`` drives this app with the same load as ``xebench
serve`` (``uvicorn _minimal_app:app --app-dir benchmarks``): it decompresses a
gzip body, parses the JSON array (or NDJSON lines) with the standard library
and answers the count, storing nothing. The service's throughput divided by
this one says what validation, the store and admission cost on top of HTTP
and JSON.
"""

from __future__ import annotations

import gzip
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/v1/predictions")
async def predictions(request: Request) -> JSONResponse:
    body = await request.body()
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    if "ndjson" in request.headers.get("content-type", ""):
        n = len([json.loads(line) for line in body.split(b"\n") if line.strip()])
    else:
        parsed = json.loads(body)
        n = len(parsed) if isinstance(parsed, list) else 1
    return JSONResponse({"accepted": n, "inserted": n, "duplicates": 0})


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
