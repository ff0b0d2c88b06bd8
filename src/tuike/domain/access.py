"""Who may do what: principals and the tenancy rules every route applies."""

from __future__ import annotations

from dataclasses import dataclass

from tuike.domain.errors import Forbidden

OPERATOR, MERCHANT, AFFILIATE, PROGRAM = "operator", "merchant", "affiliate", "program"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a role and the merchant, affiliate or program it owns.

    ``user_id`` is the portal user a key acts for: the user who made it, when that user
    has the key's role and owner. Keys made by the CLI, or through another key of no
    user, act for the account alone.
    """

    role: str
    owner_id: int | None
    key_id: int
    user_id: int | None = None

    @property
    def ref(self) -> str:
        """Return a stable reference for logs and idempotency records."""
        return f"key:{self.key_id}"

    def require(self, *roles: str) -> None:
        """Raise Forbidden unless the caller has one of ``roles``."""
        if self.role not in roles:
            raise Forbidden(f"this needs a {' or '.join(roles)} key")

    def may_manage_merchant(self, merchant_id: int) -> bool:
        """Tell whether the caller administers a merchant's programs."""
        return self.role == OPERATOR or (self.role == MERCHANT and self.owner_id == merchant_id)

    def may_act_as_affiliate(self, affiliate_id: int) -> bool:
        """Tell whether the caller may act for an affiliate."""
        return self.role == OPERATOR or (self.role == AFFILIATE and self.owner_id == affiliate_id)
