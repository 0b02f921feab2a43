"""Who is calling a service.

Until the gateway signs the principal it forwards, services read it from the
development headers `X-Atrium-User-Id` and `X-Atrium-User-Email`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from shared.errors import UnauthenticatedError


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    email: str | None

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"


async def current_principal(
    x_atrium_user_id: Annotated[str | None, Header()] = None,
    x_atrium_user_email: Annotated[str | None, Header()] = None,
) -> Principal:
    if not x_atrium_user_id:
        msg = "Sign in to call this endpoint."
        raise UnauthenticatedError(msg)
    return Principal(user_id=x_atrium_user_id, email=(x_atrium_user_email or None))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
