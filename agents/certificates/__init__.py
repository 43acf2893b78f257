"""Certificates and domains: what probes saw, what RDAP says, reminders before either expires.

    fold.py       certificates (observations, names, RDAP answers, reminders, ticks) → certificates → monitor-events
    directory.py  directory → which registrable domain each monitor names
    lookups.py    RDAP lookups of the domains due in owned partitions (an effect, outside any fold)
    commands.py   certificate.reminder.set / delete
    reads.py      a monitor's certificate, its domain, its reminders
    rules         tables/certificates.py
"""
from __future__ import annotations

import mode

from agents.certificates import commands, reads
from agents.certificates.directory import MonitorDomains
from agents.certificates.fold import TAKE, WITHIN, CertificateFolder
from agents.certificates.lookups import LOOK_EVERY, RdapLookups
from engine import ownership, topics
from engine.app import Engine
from engine.component import Component, Stream, Timer
from engine.dead_letters import DeadLetters
from tables.certificates import due_range

TICK_EVERY = 1.0       # how often the timer looks for reminder thresholds due (seconds)
RETICK_AFTER = 5.0     # a tick not applied by then is sent again (seconds)

#: the command kinds this feature applies, by kind
COMMANDS = commands.COMMANDS


def component(engine: Engine) -> Component:
    folder = CertificateFolder(engine, DeadLetters(engine.state))
    domains = MonitorDomains(engine, DeadLetters(engine.state))
    lookups = RdapLookups(engine)

    def has_threshold_due(partition: int, now: float) -> bool:
        return bool(engine.certificates.scan(partition, *due_range(int(now * 1000)), limit=1))

    # a tick, with this worker's clock, to each owned partition where a reminder threshold is due
    threshold_timer = ownership.due_ticks(engine.app, topics.CERTIFICATES, has_threshold_due, folder.ticks_applied,
                                          RETICK_AFTER)

    class LookupClient(mode.Service):
        async def on_stop(self) -> None:
            await lookups.close()

    return Component(
        name="certificates",
        streams=(Stream(topics.CERTIFICATES, "certificates", folder, take=TAKE, within=WITHIN),
                 Stream(topics.DIRECTORY, "monitor-domains", domains, take=TAKE, within=WITHIN)),
        commands=COMMANDS,
        reads=(reads.routes, reads.health_routes(lambda: {**folder.health(), **lookups.health(),
                                                          "domains_named": domains.named})),
        timers=(Timer(TICK_EVERY, threshold_timer), Timer(LOOK_EVERY, lookups.tick)),
        services=(LookupClient,),
    )
