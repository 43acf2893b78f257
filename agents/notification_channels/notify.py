"""How another feature tells a person or a team: one `send` on `notification-deliveries`, to the owner's partition.

    notify(engine, person(user_id), message_id, subject, text, at, link=..., data=...)

Every enabled, verified channel of the owner gets it, in priority order, each
retried with backoff and logged (GET .../notification-channels/{id}/deliveries).
`message_id` is the dedup key: the same id reaches a channel once, however often
it is emitted (a page's repeat or escalation step needs an id of its own, e.g.
"page:<id>:<recipient>:<step>:<repeat>"). Call it from a fold or command handler
(it is an event its state implies: it reaches Kafka before that state), never
from a request handler.
"""
from __future__ import annotations

from typing import Any

import orjson

from engine import topics
from engine.partitioning import entity_key, partition_for
from schemas.notification_channel import NotificationRequest
from tables.notification_channels import person, team

__all__ = ["notify", "person", "team"]


def notify(engine: Any, owner: str, message_id: str, subject: str, text: str, at: float, *,
           link: str | None = None, data: dict | None = None) -> None:
    """Queue a message for every enabled, verified channel of `owner` (person(user_id) or team(team_id))."""
    request = NotificationRequest(id=message_id, owner=owner, subject=subject, text=text, link=link,
                                  data=data or {}, at=at)
    engine.state.emit(topics.NOTIFICATION_DELIVERIES, entity_key(owner), orjson.dumps(request.model_dump(mode="json")),
                      partition_for(owner, engine.partitions))
