"""The public status page in a real headless Chromium (Debian's `chromium`, which `make test` installs).

The browser loads the page as a visitor would, with no JavaScript needed; the
test reads the DOM it built and keeps a screenshot under the test's output.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.integration.cluster import Client, wait_for
from tests.integration.test_incidents import new_ruleset
from tests.integration.test_monitors import create, post_results
from tests.integration.test_status_pages import fetch, new_page, summary, unique

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it as root)")


class Dom(HTMLParser):
    """Every element as (tag, attributes, its text), in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict, list[str]]] = []
        self.open: list[list[str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        text: list[str] = []
        self.elements.append((tag, dict(attrs), text))
        if tag not in ("meta", "link", "input", "img", "br"):
            self.open.append(text)

    def handle_endtag(self, tag: str) -> None:
        if self.open:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for text in self.open:
            text.append(data)

    def having(self, **attrs: str) -> list[tuple[dict, str]]:
        return [(found, " ".join("".join(text).split())) for _, found, text in self.elements
                if all(name in found and (value is None or value in found[name].split())
                       for name, value in attrs.items())]


def browse(url: str, out: Path, name: str | None = None) -> Dom:
    """Load `url` in headless Chromium: its DOM, and (given a name) a screenshot saved as out/<name>.png."""
    common = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--hide-scrollbars", f"--user-data-dir={out / 'profile'}"]
    dumped = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True)
    if name is None:
        return Dom(dumped.stdout)
    shot = out / f"{name}.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,1600", url], capture_output=True,
                   timeout=90, check=True)
    assert shot.stat().st_size > 10_000, "the screenshot is empty"
    return Dom(dumped.stdout)


def test_the_page_in_a_browser_shows_the_outage_its_bars_and_the_incident_timeline(api: Client,
                                                                                  tmp_path: Path) -> None:
    new_ruleset(api, {"rule_type": "state-change", "name": "Monitors down", "urgency": "high",
                      "actions": ["trigger-alerts", "trigger-statuspage-update"],
                      "conditions": [{"key": "event", "operator": "equal", "values": ["monitor.down"]}]})
    monitor = create(api, regions=[], name="Payments")
    subdomain = unique("browser")
    new_page(api, subdomain, page_name="Acme status", components=[
        {"name": "Payments API", "group": "Payments", "monitor_id": monitor["id"]},
        {"name": "Card terminals", "group": "Payments"}, {"name": "Website"}])
    now = time.time()
    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": now - 60},
                       {"monitor_id": monitor["id"], "status": "down", "cause": "HTTP 502", "checked_at": now - 1}])
    wait_for("the outage and its incident on the page",
             lambda: (s := summary(api, subdomain)) and s["incidents"] and s["status"]["indicator"] == "critical", 15)

    dom = browse(f"{api.base}/s/{subdomain}", tmp_path, "outage")
    print(f"screenshot: {tmp_path / 'outage.png'}")
    [(banner, words)] = dom.having(id="banner")
    assert banner["data-indicator"] == "critical" and words == "Major System Outage"
    components = {text.split(" Major outage")[0].split(" Operational")[0]: found["data-status"]
                  for found, text in dom.having(**{"class": "component"})}
    assert components == {"Payments API": "major_outage", "Card terminals": "operational", "Website": "operational"}
    bars = dom.having(**{"class": "bar"})
    assert len(bars) == 3 * 90
    assert all(found["title"].endswith("no data") or "% uptime" in found["title"] for found, _ in bars)
    assert "down" in bars[89][0]["class"] and "50.0% uptime" in bars[89][0]["title"]  # today: one up, one down
    [(incident, text)] = dom.having(**{"class": "incident"})
    assert incident["data-status"] == "investigating" and "Payments is down" in text and "Payments API" in text
    assert [found["data-status"] for found, _ in dom.having(**{"class": "update"})] == ["investigating"]
    assert [text for _, text in dom.having(id="active-incidents")][0].startswith("Active incidents")
    assert not dom.having(**{"class": "incident", "data-status": "resolved"})

    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": time.time()}])
    wait_for("the resolution", lambda: (s := summary(api, subdomain)) and not s["incidents"], 15)
    dom = browse(f"{api.base}/s/{subdomain}", tmp_path)
    assert dom.having(id="banner")[0][0]["data-indicator"] == "none"
    assert [found["data-status"] for found, _ in dom.having(**{"class": "update"})] == ["resolved", "investigating"]
    assert not dom.having(id="active-incidents")


def test_a_private_page_in_a_browser_asks_for_its_password(api: Client, tmp_path: Path) -> None:
    subdomain = unique("browser-private")
    new_page(api, subdomain, type="private", password="open sesame", components=[{"name": "Secret core"}])
    wait_for("the private page", lambda: fetch(api.base, f"/s/{subdomain}").status == 401, 10)
    dom = browse(f"{api.base}/s/{subdomain}", tmp_path)
    assert dom.having(type="password") and dom.having(action=f"/s/{subdomain}/login")
    assert not dom.having(**{"class": "component"}) and not dom.having(id="banner")
