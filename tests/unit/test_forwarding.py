"""X-Forwarded-For is believed only from trusted proxies, and then only up to the nearest untrusted hop."""
from __future__ import annotations

from api.forwarding import client_of
from engine.outbound import allowed_networks

PROXIES = allowed_networks("10.0.0.0/8")


def test_without_trusted_proxies_the_client_is_the_peer() -> None:
    assert client_of("203.0.113.9", "6.6.6.6", ()) == "203.0.113.9"
    assert client_of("10.0.0.2", "6.6.6.6", ()) == "10.0.0.2"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_name_the_client() -> None:
    assert client_of("203.0.113.9", "6.6.6.6", PROXIES) == "203.0.113.9"


def test_behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() -> None:
    assert client_of("10.0.0.2", "198.51.100.7", PROXIES) == "198.51.100.7"
    # a client sends its own X-Forwarded-For: the proxy appends what it saw; the spoofed part is ignored
    assert client_of("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.3", PROXIES) == "198.51.100.7"
    assert client_of("10.0.0.2", "", PROXIES) == "10.0.0.2"
