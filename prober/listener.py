"""An aiohttp application on one ``HOST:PORT``: what the health server and the status
page's own listener share (bind, the real port when 0 was asked, stop). The address is
logged by the subclass's module logger."""

from __future__ import annotations

import logging

from aiohttp import web


class Listener:
    """Serves the routes :meth:`routes` adds, on ``host:port`` (port 0: a free one)."""

    what = "listener"
    """How the log line announcing the address names it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` when the address cannot be bound."""
        app = web.Application()
        self.routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        logging.getLogger(type(self).__module__).info("%s on %s", self.what, self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
