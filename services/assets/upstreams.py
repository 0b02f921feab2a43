"""What assets asks other services, over internal HTTP, signed with the principal of
the person (or key) it acts for (`shared.principal.sign_principal`):

- billing: an avatar takes a slot and pays the avatar fee, in billing's one
  transaction (`POST /internal/v1/workspaces/{id}/avatar-claims`, idempotent by the
  avatar's id as its `Idempotency-Key`), and frees the slot when it is deleted
  (`DELETE …/avatar-claims/{avatar_id}`, idempotent);
- identity: whether the caller sees a workspace they want to share an asset with
  (`GET /internal/v1/workspaces/{id}/access`).

Only a definite answer is reported as one. A timeout, a connection error or any answer
that does not settle the question is `BillingUnavailableError` (503): an avatar then
stays pending (or deleting) and the reconciler settles it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, replace

import aiohttp

from contracts import problems
from services.assets.domain import BillingUnavailableError
from shared.principal import PRINCIPAL_HEADER, Principal, sign_principal
from shared.settings import ServiceName, Settings
from shared.tracing import calling

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """billing said no, and changed nothing: its problem, to pass on to the caller."""

    status: int
    problem_type: str
    detail: str


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    problem_type: str | None
    detail: str

    @property
    def refusal(self) -> Refusal | None:
        """A problem answer that rolled billing's transaction back: any 4xx, and a 503
        `not-ready-yet` (billing has not heard of the workspace yet)."""
        definite = 400 <= self.status < 500 or self.problem_type == problems.NOT_READY_YET.slug
        if not definite or self.problem_type is None:
            return None
        return Refusal(self.status, self.problem_type, self.detail)


class Upstreams:
    """One pooled HTTP client for billing and identity, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def claim_avatar_slot(
        self, caller: Principal, workspace_id: uuid.UUID, avatar_id: uuid.UUID
    ) -> Refusal | None:
        """None once the slot is taken and the fee paid (now, or by an earlier attempt
        with the same avatar id); else billing's refusal."""
        answer = await self._send(
            ServiceName.BILLING,
            "POST",
            f"/internal/v1/workspaces/{workspace_id}/avatar-claims",
            replace(caller, workspace_id=workspace_id),
            body={"avatar_id": str(avatar_id)},
            headers={"Idempotency-Key": str(avatar_id)},
        )
        if answer.status == 201 or answer.problem_type == problems.AVATAR_ALREADY_CLAIMED.slug:
            return None
        refusal = answer.refusal
        if refusal is None:
            raise _unsettled("take an avatar slot", answer)
        return refusal

    async def release_avatar_slot(
        self, caller: Principal, workspace_id: uuid.UUID, avatar_id: uuid.UUID
    ) -> None:
        answer = await self._send(
            ServiceName.BILLING,
            "DELETE",
            f"/internal/v1/workspaces/{workspace_id}/avatar-claims/{avatar_id}",
            replace(caller, workspace_id=workspace_id),
        )
        if answer.status not in (204, 404):  # 404: a deleted workspace holds no slots
            raise _unsettled("free an avatar slot", answer)

    async def sees_workspace(self, caller: Principal, workspace_id: uuid.UUID) -> bool:
        """identity's own answer: whether the caller is a member of the workspace, or a
        Super Admin of one of its ancestors."""
        principal = Principal(
            user_id=caller.user_id,
            email=caller.email,
            email_verified=caller.email_verified,
            workspace_id=workspace_id,
        )
        answer = await self._send(
            ServiceName.IDENTITY,
            "GET",
            f"/internal/v1/workspaces/{workspace_id}/access",
            principal,
        )
        if answer.status == 200:
            return True
        if answer.status in (403, 404):
            return False
        raise _unsettled("check access to a workspace", answer)

    async def _send(
        self,
        service: ServiceName,
        method: str,
        path: str,
        principal: Principal,
        *,
        body: object = None,
        headers: dict[str, str] | None = None,
    ) -> _Answer:
        content = b"" if body is None else json.dumps(body).encode()
        signed = sign_principal(
            principal,
            method=method,
            target=path,
            body=content,
            secret=self.settings.internal_secret,
        )
        all_headers = {**(headers or {}), PRINCIPAL_HEADER: signed}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            with calling(service.value, method) as call:
                async with self._session().request(
                    method,
                    self.settings.base_url_for(service) + path,
                    data=content,
                    headers={**all_headers, **call.headers},
                ) as response:
                    call.answered(response.status)
                    raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as failed:
            logger.warning("%s %s %s failed: %r", service.value, method, path, failed)
            msg = f"{service.value} could not be reached; try again in a moment."
            raise BillingUnavailableError(msg) from failed
        return _Answer(response.status, *_problem(raw))

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
                skip_auto_headers=("User-Agent",),
            )
        return self._client


def _problem(raw: bytes) -> tuple[str | None, str]:
    """A problem answer's type and detail."""
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        return None, ""
    if not isinstance(parsed, dict):
        return None, ""
    kind, detail = parsed.get("type"), parsed.get("detail")
    return (kind if isinstance(kind, str) else None), (detail if isinstance(detail, str) else "")


def _unsettled(what: str, answer: _Answer) -> BillingUnavailableError:
    logger.warning("could not %s: answered %s %s", what, answer.status, answer.problem_type)
    msg = f"Could not {what} just now (answered {answer.status}); try again in a moment."
    return BillingUnavailableError(msg, headers={"Retry-After": "1"})
