"""Outgoing mail behind one interface: SMTP when configured, else the local outbox table.

Every message is recorded in ``mail_outbox``; the log line names recipient and subject only,
never the body (it can carry a reset link).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

import asyncpg

from core.settings import Settings
from core.stores import users as users_store

log = logging.getLogger("etp.mail")


class Mailer(Protocol):
    async def send(self, conn: asyncpg.Connection, *, to: str, subject: str, body: str) -> None: ...


class OutboxMailer:
    """Keeps mail in ``mail_outbox`` (local mode and tests read it there)."""

    async def send(self, conn: asyncpg.Connection, *, to: str, subject: str, body: str) -> None:
        mail_id = await users_store.insert_mail(
            conn, to_email=to, subject=subject, body=body, sent=False
        )
        log.info(
            "mail kept in the outbox", extra={"mail_id": mail_id, "to": to, "subject": subject}
        )


class SmtpMailer:
    """Sends through SMTP (``ETP_SMTP_URL=smtp[s]://user:password@host:port``)."""

    def __init__(self, settings: Settings):
        self.url = urlsplit(settings.smtp_url)
        self.sender = settings.mail_from

    async def send(self, conn: asyncpg.Connection, *, to: str, subject: str, body: str) -> None:
        import aiosmtplib

        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        await aiosmtplib.send(
            message,
            hostname=self.url.hostname or "localhost",
            port=self.url.port or (465 if self.url.scheme == "smtps" else 587),
            username=unquote(self.url.username) if self.url.username else None,
            password=unquote(self.url.password) if self.url.password else None,
            use_tls=self.url.scheme == "smtps",
            start_tls=None if self.url.scheme == "smtps" else True,
            timeout=10,
        )
        await users_store.insert_mail(
            conn, to_email=to, subject=subject, body="(sent by SMTP; body not kept)", sent=True
        )
        log.info("mail sent", extra={"to": to, "subject": subject})


def make_mailer(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_url else OutboxMailer()
