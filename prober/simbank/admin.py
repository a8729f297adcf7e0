"""Admin HTTP API of the simulated bank (no auth): faults, state, reset, scenario.

- ``GET /admin/faults`` → ``{capability: fault}``
- ``PUT /admin/faults/{capability}`` with a fault JSON body; 400 on anything invalid
- ``DELETE /admin/faults/{capability}``, ``DELETE /admin/faults``
- ``GET /admin/state``, ``POST /admin/reset``, ``GET /admin/scenario``
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from .faults import Fault, FaultError, FaultRegistry, check_capability
from .scenarios import ScenarioRunner
from .state import BankState


class AdminApi:
    """Handlers of the ``/admin`` routes."""

    def __init__(
        self,
        state: BankState,
        faults: FaultRegistry,
        scenario: Callable[[], ScenarioRunner | None],
        reset: Callable[[], None],
    ) -> None:
        self.state = state
        self.faults = faults
        self._scenario = scenario
        self._reset = reset

    def add_routes(self, app: web.Application) -> None:
        """Register the admin routes on ``app``."""
        app.router.add_get("/admin/faults", self.get_faults)
        app.router.add_delete("/admin/faults", self.clear_faults)
        app.router.add_put("/admin/faults/{capability}", self.put_fault)
        app.router.add_delete("/admin/faults/{capability}", self.delete_fault)
        app.router.add_get("/admin/state", self.get_state)
        app.router.add_post("/admin/reset", self.reset)
        app.router.add_get("/admin/scenario", self.get_scenario)

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.to_json())

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({})

    async def put_fault(self, request: web.Request) -> web.Response:
        try:
            capability = check_capability(request.match_info["capability"])
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise FaultError('body must be JSON, e.g. {"mode": "down"}') from None
            fault = Fault.from_json(body)
        except FaultError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.faults.set(capability, fault)
        return web.json_response({capability: fault.to_json()})

    async def delete_fault(self, request: web.Request) -> web.Response:
        try:
            self.faults.clear(request.match_info["capability"])
        except FaultError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.faults.to_json())

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot())

    async def reset(self, request: web.Request) -> web.Response:
        self._reset()
        return web.json_response({"status": "reset"})

    async def get_scenario(self, request: web.Request) -> web.Response:
        runner = self._scenario()
        if runner is None:
            return web.json_response({"name": None, "phase": "none", "windows": []})
        return web.json_response(runner.status())
