"""commands about status pages → the `status_pages` table → `config` messages to the page's fold, replies.

1. the topic: `commands` (engine/commands.py applies them), kinds
   `status_page.create`, `.update`, `.delete`, keyed by the page id; and
   `status_page.claim`, keyed by the claimed name (`sub:<subdomain>`,
   `dom:<domain>`), which the API sends first so that a subdomain or domain
   belongs to one page only (409 otherwise);
2. the state: `status_pages`, the configuration by id (the password only as its
   argon2 hash), remembering the command offset it last applied; claims under
   their own keys (tables/status_pages.py);
3. the transitions: create, replace, delete; a create or delete (un)lists the
   page in its organisation's index, collection "status_pages";
4. the events: `config` on topic `status-pages`, to the page's partition, where
   the fold (agents/status_pages/fold.py) owns the live model (invariant 1);
   replies on `command-replies`.
"""
from __future__ import annotations

import hmac
import time

import orjson

from engine import topics
from engine.commands import CommandApplier
from engine import mail
from engine.partitioning import entity_key
from tables import status_pages as rules
from tables.status_pages import subscription_view

COLLECTION = "status_pages"


def page_view(config: dict) -> dict:
    """What the API answers of a page's configuration (never the password)."""
    spec = config["spec"]
    return {**{name: value for name, value in spec.items() if name != "password"}, "id": config["id"],
            "has_password": config.get("password_hash") is not None,
            "maintenances": [rules.maintenance_view(m, time.time()) for m in config.get("maintenances", [])],
            "created_at": rules.iso(config["created_at"]), "updated_at": rules.iso(config["updated_at"])}


def tell_fold(applier: CommandApplier, partition: int, page_id: str, config: dict | None, offset: int,
              at: float) -> None:
    message = {"kind": "config", "page_id": page_id, "config": config, "pos": offset, "at": at}
    applier.state.emit(topics.STATUS_PAGES, entity_key(page_id), orjson.dumps(message), partition)


def page_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    table, key = applier.engine.status_pages, entity_key(command["entity_id"])
    existing = table.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:  # redelivered: answer again
            applier.forward_to_index(command, "index.add", existing, 201, page_view(existing), COLLECTION)
        else:
            applier.error(command, 409, "conflict", f"a status page with id {command['entity_id']} exists")
        return
    config = {"pos": offset, "id": command["entity_id"], "org_id": command["org_id"],
              "spec": command["body"]["spec"], "password_hash": command["body"].get("password_hash"),
              "created_at": command["at"], "updated_at": command["at"]}
    table.put(partition, key, config)
    tell_fold(applier, partition, config["id"], config, offset, command["at"])
    applier.forward_to_index(command, "index.add", config, 201, page_view(config), COLLECTION)


def page_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """Body {"spec": the whole new spec, "password_hash": new hash, or absent to keep it}."""
    config = applier.owned(applier.engine.status_pages, partition, command, "status page")
    if config is None:
        return
    if config["pos"] < offset:  # not yet applied
        body = command["body"]
        password_hash = body["password_hash"] if "password_hash" in body else config.get("password_hash")
        config = {**config, "spec": body["spec"], "password_hash": password_hash, "updated_at": command["at"],
                  "pos": offset}
        applier.engine.status_pages.put(partition, entity_key(config["id"]), config)
        tell_fold(applier, partition, config["id"], config, offset, command["at"])
    applier.reply(command["id"], 200, page_view(config))


def page_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.status_pages, partition, command, "status page")
    if config is None:
        return
    applier.engine.status_pages.delete(partition, entity_key(config["id"]))
    tell_fold(applier, partition, config["id"], None, offset, command["at"])
    applier.forward_to_index(command, "index.remove", config, 204, None, COLLECTION)


MAX_MAINTENANCES = 50   # kept per page; the oldest ended ones go first


def maintenance_set(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """Body {"maintenance": {...}}: announce (or replace, by id) a scheduled maintenance on the page."""
    config = applier.owned(applier.engine.status_pages, partition, command, "status page")
    if config is None:
        return
    maintenance = command["body"]["maintenance"]
    known = {component["id"] for component in config["spec"].get("components", [])}
    unknown = sorted(set(maintenance["component_ids"]) - known)
    if unknown:
        return applier.error(command, 422, "validation_error",
                             f"component_ids: the page has no component {', '.join(unknown)}")
    if config["pos"] < offset:
        kept = [m for m in config.get("maintenances", []) if m["id"] != maintenance["id"]] + [maintenance]
        kept.sort(key=lambda m: m["ends_at"])
        config = {**config, "maintenances": kept[-MAX_MAINTENANCES:], "pos": offset, "updated_at": command["at"]}
        applier.engine.status_pages.put(partition, entity_key(config["id"]), config)
        tell_fold(applier, partition, config["id"], config, offset, command["at"])
    applier.reply(command["id"], 201, rules.maintenance_view(maintenance, command["at"]))


def maintenance_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = applier.owned(applier.engine.status_pages, partition, command, "status page")
    if config is None:
        return
    maintenance_id = command["body"]["id"]
    if config["pos"] < offset:
        kept = [m for m in config.get("maintenances", []) if m["id"] != maintenance_id]
        if len(kept) == len(config.get("maintenances", [])):
            return applier.error(command, 404, "not_found", f"maintenance {maintenance_id} not found")
        config = {**config, "maintenances": kept, "pos": offset, "updated_at": command["at"]}
        applier.engine.status_pages.put(partition, entity_key(config["id"]), config)
        tell_fold(applier, partition, config["id"], config, offset, command["at"])
    applier.reply(command["id"], 204)


def subscribe(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """Body {"subscriber_id", "email", "token", "page_url"}: a pending subscriber, mailed a link to confirm.

    The same address again gets the link again (its first subscriber id and token); the token is kept
    whole because every update's unsubscribe link carries it (the subscriber's own secret, nobody else's).
    """
    config = applier.owned(applier.engine.status_pages, partition, command, "status page")
    if config is None:
        return
    body, table, page_id = command["body"], applier.engine.status_pages, config["id"]
    if not config["spec"].get("subscription_enabled"):
        return applier.error(command, 403, "subscriptions_disabled", "this status page takes no subscriptions")
    if body.get("webhook"):
        return subscribe_webhook(applier, partition, offset, command, page_id)
    known = table.get(partition, rules.subscribed_key(page_id, body["email"]))
    subscriber = table.get(partition, rules.subscriber_key(page_id, known)) if known else None
    if subscriber is None:
        subscriber = {"id": body["subscriber_id"], "email": body["email"], "token": body["token"],
                      "page_url": body["page_url"], "confirmed": False, "created_at": command["at"], "pos": offset}
        table.put(partition, rules.subscriber_key(page_id, subscriber["id"]), subscriber)
        table.put(partition, rules.subscribed_key(page_id, subscriber["email"]), subscriber["id"])
    if not subscriber["confirmed"]:
        mail.queue(applier.state, applier.partitions, f"subscription:{command['id']}", subscriber["email"],
                   "status_subscription",
                  {"page_name": config["spec"].get("page_name") or config["spec"]["name"],
                   "confirm_url": rules.subscriber_links(subscriber)["confirm_url"]})
    applier.reply(command["id"], 202, subscription_view(subscriber))


def subscribe_webhook(applier: CommandApplier, partition: int, offset: int, command: dict, page_id: str) -> None:
    """Body {"subscriber_id", "webhook", "secret" (sealed), "secret_prefix"}: a webhook subscriber, told of
    every update from now on (nothing to confirm: its owner asked through the API). A URL subscribes once."""
    body, table = command["body"], applier.engine.status_pages
    known = table.get(partition, rules.webhook_subscribed_key(page_id, body["webhook"]))
    subscriber = table.get(partition, rules.subscriber_key(page_id, known)) if known else None
    if subscriber is not None:
        if subscriber["pos"] == offset:  # redelivered: answer again
            return applier.reply(command["id"], 201, subscription_view(subscriber))
        return applier.error(command, 409, "conflict", f"this webhook is subscribed already ({subscriber['id']})")
    subscriber = {"id": body["subscriber_id"], "webhook": body["webhook"], "secret": body["secret"],
                  "secret_prefix": body.get("secret_prefix"), "confirmed": True, "created_at": command["at"],
                  "pos": offset}
    table.put(partition, rules.subscriber_key(page_id, subscriber["id"]), subscriber)
    table.put(partition, rules.webhook_subscribed_key(page_id, subscriber["webhook"]), subscriber["id"])
    applier.reply(command["id"], 201, subscription_view(subscriber))


def subscriber_of(applier: CommandApplier, partition: int, command: dict) -> dict | None:
    """The subscriber the command names, if its token (when given) is the subscriber's; else answered 404."""
    body = command["body"]
    subscriber = applier.engine.status_pages.get(partition, rules.subscriber_key(command["entity_id"],
                                                                                 body["subscriber_id"]))
    if subscriber is None or ("token" in body and not hmac.compare_digest(
            rules.token_hash(subscriber["token"]), rules.token_hash(body["token"]))):
        applier.error(command, 404, "not_found", f"subscription {body['subscriber_id']} not found")
        return None
    return subscriber


def subscription_confirm(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    if applier.owned(applier.engine.status_pages, partition, command, "status page") is None:
        return
    subscriber = subscriber_of(applier, partition, command)
    if subscriber is None:
        return
    if not subscriber["confirmed"]:
        subscriber = {**subscriber, "confirmed": True, "confirmed_at": command["at"]}
        applier.engine.status_pages.put(partition, rules.subscriber_key(command["entity_id"], subscriber["id"]),
                                        subscriber)
    applier.reply(command["id"], 200, subscription_view(subscriber))


def subscription_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    if applier.owned(applier.engine.status_pages, partition, command, "status page") is None:
        return
    subscriber = subscriber_of(applier, partition, command)
    if subscriber is None:
        return
    table, page_id = applier.engine.status_pages, command["entity_id"]
    table.delete(partition, rules.subscriber_key(page_id, subscriber["id"]))
    if subscriber.get("webhook"):
        table.delete(partition, rules.webhook_subscribed_key(page_id, subscriber["webhook"]))
        target = rules.webhook_target(page_id, subscriber["id"])  # its deliveries, pending or kept, go too
        applier.state.emit(topics.ALERT_CHANNEL_DELIVERIES, entity_key(page_id),
                           orjson.dumps({"kind": "purge", "channel_id": target}), partition)
    else:
        table.delete(partition, rules.subscribed_key(page_id, subscriber["email"]))
    applier.reply(command["id"], 204)


def name_claim(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """Body {"page_id", "release": bool}: a subdomain or domain is one page's; another's claim answers 409."""
    name, body = command["entity_id"], command["body"]
    table, key = applier.engine.status_pages, rules.claim_key(name)
    held = table.get(partition, key)
    if body.get("release"):
        if held is not None and held["page_id"] == body["page_id"]:
            table.delete(partition, key)
        return applier.reply(command["id"], 204)
    if held is not None and held["page_id"] != body["page_id"]:
        what, _, value = name.partition(":")
        noun = "subdomain" if what == "sub" else "domain"
        return applier.error(command, 409, "conflict", f"the {noun} {value} is taken by another status page")
    table.put(partition, key, {"page_id": body["page_id"], "org_id": command["org_id"], "pos": offset})
    applier.reply(command["id"], 200, {"claimed": name})


COMMANDS = {"status_page.create": page_create, "status_page.update": page_update, "status_page.delete": page_delete,
            "status_page.claim": name_claim, "status_page.maintenance.set": maintenance_set,
            "status_page.maintenance.delete": maintenance_delete, "status_page.subscribe": subscribe,
            "status_page.subscription.confirm": subscription_confirm,
            "status_page.subscription.delete": subscription_delete}
