"""Factories: a merchant, program, affiliates and links made through the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuike.domain.catalog import Link, Program
from tuike.services import catalog as svc
from tuike.services.keys import create_key
from tuike.storage.db import Database

DEFAULT_PLAN: dict[str, Any] = {
    "cps_percent": "10",
    "category_percent": {"phones": "3", "accessories": "8"},
    "fixed": {"lead": "5.00", "install": "2.50", "register": "1.00"},
    "groups": {"vip": {"cps_percent": "12"}},
}


@dataclass
class World:
    """A small world: one merchant, one program, two approved affiliates with links."""

    merchant_id: int
    program: Program
    other_program: Program
    affiliate_id: int
    other_affiliate_id: int
    link: Link
    other_link: Link
    operator_key: str
    merchant_key: str
    program_key: str
    other_program_key: str
    affiliate_key: str
    other_affiliate_key: str


def make_world(db: Database, *, tag: str = "", **program_fields: Any) -> World:
    """Create the small world and its API keys (``tag`` keeps emails unique per world)."""
    with db.write() as conn:
        merchant = svc.create_merchant(conn, name="Shop", timezone="Asia/Shanghai")
        fields: dict[str, Any] = {
            "name": "Shop CPS",
            "landing_url": "https://shop.example.com/",
            "allowed_domains": ["shop.example.com", "m.example.cn"],
            "fallback_url": None,
            "cookie_days": 30,
            "lock_days": 15,
            "commission_plan": DEFAULT_PLAN,
        }
        fields.update(program_fields)
        program = svc.create_program(conn, merchant_id=merchant.id, currency="CNY", **fields)
        other_merchant = svc.create_merchant(conn, name="Other", timezone="Asia/Shanghai")
        other_program = svc.create_program(
            conn,
            merchant_id=other_merchant.id,
            currency="CNY",
            name="Other CPS",
            landing_url="https://other.example.org/",
            commission_plan={"cps_percent": "5"},
        )
        affiliates = []
        for n in (1, 2):
            aff = svc.create_affiliate(
                conn,
                name=f"Affiliate {n}",
                email=f"aff{n}{tag}@example.com",
                timezone="Asia/Shanghai",
                channels=[{"kind": "blog", "name": f"Blog {n}", "url": f"https://blog{n}.example"}],
            )
            affiliates.append(aff.id)
            for prog in (program, other_program):
                m = svc.apply_to_program(conn, program=prog, affiliate_id=aff.id)
                svc.decide_membership(conn, m, status="approved")
        link = svc.create_link(conn, program=program, affiliate_id=affiliates[0], subs=["wechat"])
        other_link = svc.create_link(conn, program=other_program, affiliate_id=affiliates[1])
        keys = {
            "operator_key": create_key(conn, role="operator", owner_id=None, name="ops"),
            "merchant_key": create_key(conn, role="merchant", owner_id=merchant.id, name="m"),
            "program_key": create_key(conn, role="program", owner_id=program.id, name="p"),
            "other_program_key": create_key(
                conn, role="program", owner_id=other_program.id, name="p2"
            ),
            "affiliate_key": create_key(conn, role="affiliate", owner_id=affiliates[0], name="a"),
            "other_affiliate_key": create_key(
                conn, role="affiliate", owner_id=affiliates[1], name="a2"
            ),
        }
    return World(
        merchant_id=merchant.id,
        program=program,
        other_program=other_program,
        affiliate_id=affiliates[0],
        other_affiliate_id=affiliates[1],
        link=link,
        other_link=other_link,
        **keys,
    )
