"""Real HTTP receivers on 127.0.0.1 (aiohttp, on a thread of their own) that keep every request, for tests to read.

One server answers three kinds of caller: an SMS provider speaking Twilio's REST
shape (POST /2010-04-01/Accounts/<sid>/Messages.json and Calls.json, basic auth,
form-encoded To/From/Body or Twiml; 201 with a `sid`), webhook receivers, and
apprise's json:// and ntfy:// targets. Any path answers 200 unless a status
script is set for it (`script`: path -> statuses, the last one repeating), after a pause if one is set
(`slow`: path -> seconds).
"""
from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import BasicAuth, web

SID, TOKEN, FROM = "ACtest0000000000000000000000000000", "provider-auth-token", "+15005550006"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    at: float = 0.0


class HttpReceiver:
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.script: dict[str, list[int]] = {}
        self.slow: dict[str, float] = {}  # path -> seconds each answer waits (a request is recorded on arrival)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    # -- the server ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        form = dict(await request.post()) if request.content_type == "application/x-www-form-urlencoded" else {}
        seen = Seen(request.method, request.path, dict(request.headers), body, {k: str(v) for k, v in form.items()},
                    time.time())
        if request.path.startswith(f"/2010-04-01/Accounts/{SID}/"):
            try:
                auth = BasicAuth.decode(request.headers.get("Authorization", ""))
            except ValueError:
                auth = None
            if auth is None or (auth.login, auth.password) != (SID, TOKEN):
                return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        with self._lock:
            self.requests.append(seen)
            statuses = self.script.get(request.path)
            status = (statuses.pop(0) if len(statuses) > 1 else statuses[0]) if statuses else None
        if request.path in self.slow:
            await asyncio.sleep(self.slow[request.path])
        if request.path.endswith(("/Messages.json", "/Calls.json")):
            if status is not None and status >= 400:
                return web.json_response({"code": 21211, "message": "The 'To' number is not valid.",
                                          "status": status}, status=status)
            prefix = "SM" if request.path.endswith("/Messages.json") else "CA"
            return web.json_response({"sid": prefix + uuid.uuid4().hex, "status": "queued", "to": form.get("To"),
                                      "from": form.get("From")}, status=201)
        return web.json_response({"ok": True}, status=status or 200)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- what tests use ---------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The settings that make this server a pingstream process's SMS and voice provider."""
        return {"PINGSTREAM_SMS_URL": f"http://{self.host}:{self.port}/2010-04-01/Accounts/{SID}",
                "PINGSTREAM_SMS_USERNAME": SID, "PINGSTREAM_SMS_PASSWORD": TOKEN, "PINGSTREAM_SMS_FROM": FROM}

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def sent_to(self, phone: str, resource: str = "Messages.json") -> list[Seen]:
        """What the provider was asked to send to `phone` (resource: Messages.json or Calls.json)."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/" + resource) and r.form.get("To") == phone]
