# A re-creation of the original platform's API, for bench/api only: FastAPI on uvicorn
# (uvloop, httptools), redis-py with hiredis, one Redis hash per customer keyed by its
# UUID, the route and response shape of the original (GET /cliente/{cliente_id}/status).
import os
import time

import redis.asyncio as redis
from fastapi import FastAPI

app = FastAPI()
pool = redis.Redis(host="127.0.0.1", port=int(os.environ["REDIS_PORT"]),
                   password=os.environ.get("REDIS_PASSWORD") or None, decode_responses=True)


@app.get("/cliente/{cliente_id}/status")
async def status(cliente_id: str):
    start = time.perf_counter()
    data = await pool.hgetall(f"cliente:{cliente_id}")
    latencia_ms = round((time.perf_counter() - start) * 1000, 3)
    if not data:
        return {"cliente_id": cliente_id, "status": "CADASTRO INEXISTENTE", "fonte": "redis",
                "latencia_ms": latencia_ms}
    return {"cliente_id": cliente_id, "status_clube": data.get("status_clube"),
            "origem_campanha": data.get("origem_campanha"), "fonte": "redis",
            "latencia_ms": latencia_ms}
