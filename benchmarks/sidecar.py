"""A small aiohttp server for benchmarks/daemon.py, in its own process (its CPU is not counted).

    python benchmarks/sidecar.py --port P [--delay-ms 20]

nginx cannot delay an answer (``echo_sleep`` is not in Debian's ``nginx-light``), so this
server plays the target with a known delay and the InfluxDB the daemon writes to while
the latency is measured:

* ``GET /fast`` answers at once (the journey's first step, which opens the connection);
* ``GET /delay`` answers after ``--delay-ms`` (``asyncio.sleep``);
* ``POST /write`` takes InfluxDB v1 line protocol , keeps the
  ``duration_ms`` of every ``step`` point of the step named ``delayed`` and the
  ``schedule_lag_ms`` of every ``prober`` self-report point, answers 204;
* ``GET /delayed`` and ``GET /lags`` return them as JSON lists; ``DELETE`` forgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

from aiohttp import web

_DELAYED = re.compile(rb"^step,[^ ]*\bstep=delayed\b[^ ]* (?:[^ ]*,)?duration_ms=([0-9.eE+-]+)")
_LAG = re.compile(rb"^prober,[^ ]* (?:[^ ]*,)?schedule_lag_ms=([0-9.eE+-]+)")


def make_app(delay_s: float) -> web.Application:
    kept: dict[str, list[float]] = {"delayed": [], "lags": []}

    async def fast(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def delay(_request: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        return web.json_response({"ok": True})

    async def write(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp undoes the gzip Content-Encoding
        for line in body.splitlines():
            if line.startswith(b"step,") and (match := _DELAYED.match(line)) is not None:
                kept["delayed"].append(float(match.group(1)))
            elif line.startswith(b"prober,") and (match := _LAG.match(line)) is not None:
                kept["lags"].append(float(match.group(1)))
        return web.Response(status=204)

    async def figures(request: web.Request) -> web.Response:
        values = kept[request.match_info["what"]]
        if request.method == "DELETE":
            values.clear()
            return web.Response(status=204)
        return web.Response(text=json.dumps(values), content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/fast", fast)
    app.router.add_get("/delay", delay)
    app.router.add_post("/write", write)
    app.router.add_route("*", "/{what:delayed|lags}", figures)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    web.run_app(make_app(args.delay_ms / 1000.0), host="127.0.0.1", port=args.port, access_log=None,
                print=None)


if __name__ == "__main__":
    main()
