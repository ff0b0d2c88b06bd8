"""Affiliate postbacks (spec section 5): templates, and the deliveries conversions queue.

An affiliate sets a URL template for the account (program 0) and, if it likes, one per
program it is approved in. Every conversion event (a row of ``conversion_events``: a new
conversion, a status change, a partial refund) of an attributed conversion queues one
delivery in the same transaction, with the macros filled in; ``workers/postbacks.py``
sends it after commit. The event's id is in the delivery's ``event_key``, so the same
event is never queued twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from tuike.domain import ids
from tuike.domain import ledger as L
from tuike.domain import postbacks as P
from tuike.domain.errors import Conflict, InvalidField, NotFound
from tuike.domain.money import format_minor, from_minor, to_minor
from tuike.services.clock import utcnow
from tuike.services.ledger import fee_terms
from tuike.storage import catalog as repo
from tuike.storage import postbacks as store

DEFAULT = 0  # program_id of the account-wide template
TESTS_PER_MINUTE = 10


class TooManyTests(Conflict):
    """An affiliate fires test postbacks faster than allowed (answered 429)."""


def payout_of(row: Any, commission_minor: int) -> str:
    """Return the affiliate's share of a commission as a decimal string ("19.90")."""
    cur = row.currency
    share = L.split(from_minor(commission_minor, cur), cur, fee_terms(row)).affiliate_gets
    return format_minor(share, cur)


def macro_values(row: Any, status: str, commission_minor: int) -> dict[str, str]:
    """Return the macro values of a conversion (a row of ``conversions``) in a state."""
    return {
        "click_id": row.click_id or "",
        # The affiliate's own click id, sent with the click (spec section 1) and copied
        # onto the conversion; empty when the click had none or no click attributed it.
        "aff_click_id": row.aff_click_id or "",
        **{f"sub{i}": getattr(row, f"sub{i}") or "" for i in range(1, 6)},
        "event": row.event,
        "order_id": row.order_id,
        "payout": payout_of(row, commission_minor),
        "currency": row.currency,
        "status": status,
    }


def delivery_values(
    affiliate_id: int, url: str, now: datetime, *, event_key: str, conversion_id: str | None
) -> dict[str, Any]:
    """Return a new pending delivery row (failed at once if the URL cannot be stored)."""
    values: dict[str, Any] = {
        "affiliate_id": affiliate_id,
        "conversion_id": conversion_id,
        "event_key": event_key,
        "url": url,
        "status": P.PENDING,
        "is_test": False,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    if len(url) > P.MAX_URL:
        values |= {
            "url": url[: P.MAX_URL],
            "status": P.FAILED,
            "last_error": f"the URL with its values is longer than {P.MAX_URL} characters",
        }
    return values


def enqueue_for_event(
    conn: Connection,
    row: Any,
    event_id: int,
    *,
    status: str,
    commission_minor: int,
    now: datetime,
) -> bool:
    """Queue the affiliate's postback of one conversion event; tell whether one was queued.

    Costs nothing for unattributed conversions and one indexed read for affiliates
    without a template.
    """
    if row.affiliate_id is None:
        return False
    template = store.template_for(conn, row.affiliate_id, row.program_id)
    if template is None:
        return False
    url = P.render(template, macro_values(row, status, commission_minor))
    key = f"cv:{row.id}:{event_id}"
    values = delivery_values(row.affiliate_id, url, now, event_key=key, conversion_id=row.id)
    return store.enqueue(conn, values)


def _check_program(conn: Connection, affiliate_id: int, program_id: int) -> None:
    if program_id == DEFAULT:
        return
    program = repo.get_program(conn, program_id)
    if program is None:
        raise NotFound("program")
    membership = repo.get_membership(conn, program_id, affiliate_id)
    if membership is None or membership.status != "approved":
        raise Conflict(f"you are not approved in program {program_id}")


def set_postback_url(
    conn: Connection,
    affiliate_id: int,
    program_id: int,
    url_template: str,
    *,
    now: datetime | None = None,
) -> P.PostbackUrl:
    """Set the account default (program 0) or a program's postback URL template."""
    template = P.check_template(url_template)
    if program_id < 0:
        raise InvalidField("program_id", "must be 0 (all programs) or a program id")
    _check_program(conn, affiliate_id, program_id)
    store.save_url(conn, affiliate_id, program_id, template, now or utcnow())
    saved = store.get_url(conn, affiliate_id, program_id)
    assert saved is not None
    return saved


def delete_postback_url(conn: Connection, affiliate_id: int, program_id: int) -> None:
    """Remove the account default (program 0) or a program's template."""
    if not store.delete_url(conn, affiliate_id, program_id):
        raise NotFound("postback URL")


def postback_urls(conn: Connection, affiliate_id: int) -> list[P.PostbackUrl]:
    """Return an affiliate's templates, the account default first."""
    return store.list_urls(conn, affiliate_id)


def deliveries(conn: Connection, affiliate_id: int, limit: int = 50) -> list[P.Delivery]:
    """Return an affiliate's latest deliveries, newest first."""
    return store.list_deliveries(conn, affiliate_id, limit)


@dataclass(frozen=True, slots=True)
class TestPostback:
    """A test postback ready to send: the URL with sample values."""

    affiliate_id: int
    url: str


def prepare_test(
    conn: Connection,
    affiliate_id: int,
    program_id: int = DEFAULT,
    url_template: str | None = None,
    *,
    now: datetime | None = None,
) -> TestPostback:
    """Fill a template with sample values for a test postback.

    The template is the one given (not saved), else the affiliate's template for the
    program (or the account default).
    """
    now = now or utcnow()
    if store.tests_since(conn, affiliate_id, now - timedelta(minutes=1)) >= TESTS_PER_MINUTE:
        raise TooManyTests(f"at most {TESTS_PER_MINUTE} test postbacks a minute; wait a little")
    currency = "CNY"
    if program_id != DEFAULT:
        _check_program(conn, affiliate_id, program_id)
        program = repo.get_program(conn, program_id)
        assert program is not None
        currency = program.currency
    if url_template is not None and url_template.strip():
        template = P.check_template(url_template)
    else:
        template = store.template_for(conn, affiliate_id, program_id)
        if template is None:
            raise NotFound("postback URL")
    payout = format_minor(to_minor(Decimal(1), currency), currency)
    values = P.sample_values(currency, click_id=ids.new_ulid(now), payout=payout)
    url = P.render(template, values)
    if len(url) > P.MAX_URL:
        raise InvalidField(P.FIELD, f"is longer than {P.MAX_URL} characters once filled in")
    return TestPostback(affiliate_id=affiliate_id, url=url)


def log_test(
    conn: Connection,
    test: TestPostback,
    *,
    status: str,
    code: int | None,
    error: str,
    snippet: str,
    sent_at: datetime,
) -> P.Delivery:
    """Store a test postback that was sent, with its answer, in the delivery log."""
    values = delivery_values(
        test.affiliate_id, test.url, sent_at, event_key=f"test:{ids.new_ulid()}", conversion_id=None
    )
    values |= {
        "status": status,
        "is_test": True,
        "attempts": 1,
        "last_code": code,
        "last_error": error[:500] or None,
        "response_snippet": snippet[:500] or None,
        "delivered_at": sent_at if status == P.DELIVERED else None,
    }
    delivery = store.get_delivery(conn, store.add_delivery(conn, values))
    assert delivery is not None
    return delivery
