"""What the API knows of topic `status-page-views`: every page's live view, by id, subdomain and domain.

Every API process follows the topic from its start (api/gateway.py), as it
follows the directory, so a public page is served from memory: one lookup by
subdomain or Host, whatever the number of monitors behind it, and it keeps
answering while partitions move. What is rendered of a view (HTML, Statuspage
JSON, the feed) is kept beside it until the next version replaces it.
"""
from __future__ import annotations

from collections.abc import Callable
import orjson


MAX_RENDERED = 10_000   # renderings kept at most (HTML, JSON documents, feeds of every page)


class StatusPageViews:
    def __init__(self) -> None:
        self.pages: dict[str, dict] = {}           # page id -> its view (tables/status_pages.py page_view)
        self.by_subdomain: dict[str, str] = {}
        self.by_domain: dict[str, str] = {}
        self.rendered: dict[tuple, bytes] = {}     # (page id, version, what, ...) -> bytes

    def apply(self, key: bytes, value: bytes | None) -> None:
        page_id = orjson.loads(key)
        before = self.pages.pop(page_id, None)
        if before is not None:
            if self.by_subdomain.get(before["subdomain"]) == page_id:
                del self.by_subdomain[before["subdomain"]]
            if before.get("domain") and self.by_domain.get(before["domain"]) == page_id:
                del self.by_domain[before["domain"]]
            for made in [made for made in self.rendered if made[0] == page_id]:
                del self.rendered[made]
        if value is None:
            return
        view = orjson.loads(value)
        self.pages[page_id] = view
        self.by_subdomain[view["subdomain"]] = page_id
        if view.get("domain"):
            self.by_domain[view["domain"]] = page_id

    def by_name(self, subdomain: str) -> dict | None:
        page_id = self.by_subdomain.get(subdomain)
        return None if page_id is None else self.pages.get(page_id)

    def by_host(self, host: str) -> dict | None:
        page_id = self.by_domain.get(host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host)
        return None if page_id is None else self.pages.get(page_id)

    def render(self, view: dict, what: tuple, make: Callable[[], bytes]) -> bytes:
        """`make()` once per version of the page for `what`; the bytes from memory after that."""
        key = (view["id"], view["version"], *what)
        made = self.rendered.get(key)
        if made is None:
            if len(self.rendered) > MAX_RENDERED:  # yesterday's bars, other hosts' links: made again if asked
                self.rendered.clear()
            made = self.rendered[key] = make()
        return made

