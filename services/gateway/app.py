"""The gateway's wiring and entry point: `python -m services.gateway.app`.

Every public request goes through the same steps: refuse an API key sent in the query
string, find the operation in the route table, authenticate the caller (a user token,
or an API key), apply their rate limits and the request's size limits, decide from
the workspace tree whether their role allows the operation (a key: a developer of its
own workspace, nothing anywhere else), and forward it to the owning service with a
signed principal that says who is calling and what they are in the path's workspace.
Every refusal is a problem+json answer. Each request made with a key is recorded for
the usage events (`services.gateway.usage`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from contracts import problems
from contracts.permissions import Role
from contracts.problems import ProblemType
from services.gateway import metrics, models
from services.gateway.access import AccessResolver, IdentityUnavailableError
from services.gateway.auth import API_KEY_PREFIX, Authenticator, credentials_from
from services.gateway.authz import Access, key_refusal, refusal
from services.gateway.consumers import register_consumers
from services.gateway.keys import ApikeysUnavailableError, KeyProjection, KeyRecord, KeyVerifier
from services.gateway.openapi import merge_documents
from services.gateway.projection_changes import ProjectionChanges
from services.gateway.projections import AccessProjection, WorkspaceStatus
from services.gateway.proxy import FORWARDED_AWAY, Upstreams
from services.gateway.ratelimit import Allowance, Rate, RateLimiter
from services.gateway.routes import NoRoute, Route, RouteMatch, RouteTable, uuid_or_none
from services.gateway.settings import GatewaySettings
from services.gateway.shared_ratelimit import DELETE_FULL_EVERY_SECONDS, SharedRateLimits
from services.gateway.usage import UNMATCHED, UsageRecorder
from shared.errors import UnauthenticatedError, problem_response
from shared.http import REQUEST_ID_HEADER, ReadinessCheck, install_http_plumbing
from shared.logging import request_id_var
from shared.metrics import install_metrics, name_route
from shared.pagination import MAX_PAGE_SIZE
from shared.principal import Principal, request_target
from shared.service import ServiceRuntime, serve
from shared.settings import ServiceName
from shared.tracing import FASTAPI_TELEMETRY, describe_request

logger = logging.getLogger(__name__)

SERVICE = ServiceName.GATEWAY
DEPLOYED = (ServiceName.IDENTITY, ServiceName.BILLING, ServiceName.ASSETS, ServiceName.APIKEYS)
"""The services behind the gateway: it is ready when they are, and its API document is
theirs."""
LIMIT_RANGE = range(1, MAX_PAGE_SIZE + 1)
"""`?limit=` of every list: 1 to the largest page."""
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
"""Every method reaches the route table, so that a path's 405 names exactly the methods
the path takes."""
_REVOKE_KEY = ("DELETE", "/v1/workspaces/{workspace_id}/api-keys/{key_id}")
_ROTATE_KEY = ("POST", "/v1/workspaces/{workspace_id}/api-keys/{key_id}/rotate")
_KEY_PARAMETERS = frozenset({"api_key", "apikey", "key"})
_KEY_SHAPED = re.compile(re.escape(API_KEY_PREFIX) + "[0-9A-Za-z]{32}")
_SINGLE_VALUED = ("authorization", "x-api-key", "idempotency-key")
"""Headers that carry one credential or one key."""


@dataclass(slots=True)
class _Exchange:
    """What the gateway learns about a request on its way: with an API key, what its
    usage record and its `RateLimit-*` headers say."""

    key: KeyRecord | None = None
    route: str = UNMATCHED
    allowance: Allowance | None = None


class Gateway:
    def __init__(self, settings: GatewaySettings, runtime: ServiceRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.routes = RouteTable()
        self.projection = AccessProjection()
        self.upstreams = Upstreams(settings)
        self.resolver = AccessResolver(self.projection, self.upstreams.identity_access)
        self.authenticator = Authenticator(settings, jwks_url=settings.jwks_url)
        self.keys = KeyProjection()
        self.key_verifier = KeyVerifier(
            self.keys,
            self.projection,
            pepper=settings.apikey_pepper,
            ask_apikeys=self.upstreams.apikeys_key,
        )
        self.projection_changes = ProjectionChanges(
            runtime.database, self.resolver, self.keys, self.key_verifier
        )
        self.usage = UsageRecorder(runtime.units_of_work)
        self.rate_limits = SharedRateLimits(
            runtime.database,
            per_caller=Rate(
                burst=settings.rate_limit_burst, per_second=settings.rate_limit_per_second
            ),
            shared=settings.shared_rate_limits,
        )
        """Each caller's bucket, and each key's with a `rate_limit` of its own: shared by
        every gateway process."""
        self.address_refusals = RateLimiter(
            per_second=settings.address_refusals_per_second,
            burst=settings.address_refusals_burst,
        )
        """Per process, in its memory: flood protection must cost nothing under a flood
        (no round trip per refused request), and a flood spread over N processes is
        held to N times this budget."""
        self._api_document: dict[str, Any] | None = None
        register_consumers(runtime.consumer)
        runtime.every(settings.usage_flush_seconds, "usage-flush", self.usage.flush)
        runtime.every(
            DELETE_FULL_EVERY_SECONDS, "rate-buckets", self.rate_limits.delete_full_buckets
        )
        runtime.on_stop(self.rate_limits.close)

    async def start(self) -> None:
        await self.upstreams.open()
        await self.projection_changes.start()
        await self.runtime.start()

    async def stop(self) -> None:
        await self.projection_changes.stop()
        try:
            await self.usage.flush()
        except Exception:
            logger.exception("the last %d recorded API requests are lost", len(self.usage.pending))
        await self.runtime.stop()
        await self.upstreams.close()

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        def upstream(service: ServiceName) -> ReadinessCheck:
            async def check() -> None:
                await self.upstreams.check_ready(service)

            return check

        return {
            **{service.value: upstream(service) for service in DEPLOYED},
            **self.runtime.readiness_checks(),
        }

    async def handle(self, request: Request) -> Response:
        arrived, arrived_at = time.perf_counter(), datetime.now(UTC)
        exchange = _Exchange()
        try:
            response = await self._answer(request, exchange)
        except _Refused as refused:
            response = refused.response
        if exchange.allowance is not None:
            response.headers.update(exchange.allowance.headers())
        if exchange.key is not None:
            self.usage.record(
                exchange.key,
                route=exchange.route,
                status=response.status_code,
                latency_ms=(time.perf_counter() - arrived) * 1000,
                at=arrived_at,
            )
        return response

    async def _answer(self, request: Request, exchange: _Exchange) -> Response:
        _refuse_keys_in_query(request)
        _refuse_repeated_headers(request)
        matched, caller = await self._admitted(request, exchange)
        await self._within_limits(request, caller, exchange)
        _refuse_malformed(request, matched.route)
        principal = await self._vouched(matched, caller, exchange.key)
        response = await self._forward(request, matched.route, principal)
        self._note_key_ended(request, matched.route, response.status_code)
        return response

    def _note_key_ended(self, request: Request, route: Route, status: int) -> None:
        """A key revoked (204) or rotated (201) through this process is refused by it
        from the very next request, not only once the event comes back."""
        operation = (route.method, route.template)
        if operation == _REVOKE_KEY and status == 204:
            grace = 0
        elif operation == _ROTATE_KEY and status == 201:
            grace = _decimal(request.query_params.get("grace_seconds", "0")) or 0
        else:
            return
        key_id = uuid_or_none(request.url.path.split("/")[5])
        if key_id is not None:
            self.key_verifier.ended_here(key_id, at=time.time() + grace)

    async def _admitted(
        self, request: Request, exchange: _Exchange
    ) -> tuple[RouteMatch, Principal]:
        """The operation and who asks for it. A request refused before its caller is
        known (no such route, no valid credentials) spends one of its client address's
        tokens (`_caller` says what happens when there are none left)."""
        address = request.client.host if request.client else ""
        try:
            try:
                matched = self._route(request)
            except _Refused:
                # Not authenticated on the way, but a known key's request still counts.
                exchange.key = self._known_key(request)
                raise
            exchange.route = f"{matched.route.method} {matched.route.template}"
            describe_request(
                request.scope, route=matched.route.template, workspace_id=matched.workspace_id
            )
            return matched, await self._caller(request, address, exchange)
        except _Refused as refused:
            if refused.problem is not problems.RATE_LIMITED:
                self.address_refusals.retry_after(address)
            raise

    async def _caller(self, request: Request, address: str, exchange: _Exchange) -> Principal:
        """Credentials the gateway has verified already (a user's token it remembers, a
        key of its projection) are known at the cost of a lookup, whatever their
        address. Others from an address past its budget of refusals are refused before
        they are checked: a flood from one address costs little, and its neighbours
        behind the same address keep working."""
        try:
            credentials = credentials_from(
                request.headers.get("authorization"), request.headers.get("x-api-key")
            )
            if credentials.startswith(API_KEY_PREFIX):
                exchange.key = await self._verified_key(credentials, address)
                return Principal(api_key_id=exchange.key.key_id)
            known = self.authenticator.remembered(credentials)
            if known is not None:
                return known
            self._refuse_past_address_budget(address)
            return await self.authenticator.authenticate(credentials)
        except UnauthenticatedError as refused:
            metrics.authentication_refused()
            raise _Refused(
                problems.UNAUTHENTICATED, refused.detail, headers={"www-authenticate": "Bearer"}
            ) from refused

    async def _verified_key(self, key: str, address: str) -> KeyRecord:
        try:
            return await self.key_verifier.verify(
                key, before_asking=lambda: self._refuse_past_address_budget(address)
            )
        except ApikeysUnavailableError as unavailable:
            # Not a 401: the key may be one made a moment ago, and a client that is told
            # its key is not valid may well throw it away.
            raise _cannot_check_now("This API key") from unavailable

    def _known_key(self, request: Request) -> KeyRecord | None:
        try:
            credentials = credentials_from(
                request.headers.get("authorization"), request.headers.get("x-api-key")
            )
        except UnauthenticatedError:
            return None
        if not credentials.startswith(API_KEY_PREFIX):
            return None
        return self.key_verifier.known(credentials)

    def _refuse_past_address_budget(self, address: str) -> None:
        wait = self.address_refusals.waiting(address)
        if wait is not None:
            metrics.rate_limited(metrics.Limit.ADDRESS)
            raise _Refused(
                problems.RATE_LIMITED,
                "Too many refused requests from your address; slow down.",
                headers={"retry-after": str(wait)},
            )

    def _route(self, request: Request) -> RouteMatch:
        path = request.url.path
        matched = self.routes.match(request.method, path)
        name_route(request, UNMATCHED if isinstance(matched, NoRoute) else matched.route.template)
        if not isinstance(matched, NoRoute):
            return matched
        if matched.allowed_methods:
            raise _Refused(
                problems.METHOD_NOT_ALLOWED,
                f"{path} does not take {request.method}.",
                headers={"allow": ", ".join(matched.allowed_methods)},
            )
        raise _Refused(problems.NOT_FOUND, f"No route for {path}.")

    async def _within_limits(
        self, request: Request, caller: Principal, exchange: _Exchange
    ) -> None:
        key = exchange.key
        if key is not None and key.rate_limit is not None:
            limit = key.rate_limit
            exchange.allowance = await self.rate_limits.for_key(
                key.key_id, Rate(limit.requests, limit.requests / limit.period_seconds)
            )
            if exchange.allowance.retry_after is not None:
                metrics.rate_limited(metrics.Limit.KEY)
                raise _Refused(
                    problems.RATE_LIMITED,
                    "This API key's rate limit is reached; slow down.",
                    headers={"retry-after": str(exchange.allowance.retry_after)},
                )
        retry_after = (await self.rate_limits.for_caller(caller.actor)).retry_after
        if retry_after is not None:
            metrics.rate_limited(metrics.Limit.CALLER)
            raise _Refused(
                problems.RATE_LIMITED,
                "Too many requests; slow down.",
                headers={"retry-after": str(retry_after)},
            )
        declared_length = _decimal(request.headers.get("content-length", ""))
        if declared_length is not None and declared_length > self.settings.max_body_bytes:
            raise self._too_large()

    async def _vouched(
        self, matched: RouteMatch, caller: Principal, key: KeyRecord | None
    ) -> Principal:
        """The principal the service gets: the caller, and what they are in the path's
        workspace once the gateway has decided that they may do the operation there."""
        if key is not None:
            return self._key_vouched(matched, key)
        if matched.route.verified_email and not caller.email_verified:
            metrics.authorization_refused(problems.EMAIL_NOT_VERIFIED)
            raise _Refused(
                problems.EMAIL_NOT_VERIFIED, "Invitations are for a verified email address."
            )
        if matched.workspace_id is None:
            return caller
        try:
            access = await self.resolver.access(caller, matched.workspace_id)
        except IdentityUnavailableError as unavailable:
            raise _cannot_check_now("Your access to this workspace") from unavailable
        refused = refusal(matched.route, matched.workspace_id, access)
        if refused is not None:
            metrics.authorization_refused(refused.problem)
            raise _Refused(refused.problem, refused.detail)
        assert access is not None
        return replace(
            caller,
            workspace_id=matched.workspace_id,
            role=access.role,
            ancestor_super_admin=access.ancestor_super_admin,
        )

    def _key_vouched(self, matched: RouteMatch, key: KeyRecord) -> Principal:
        """A key is a developer of its own workspace, and nothing anywhere else."""
        workspace_id = matched.workspace_id
        refused = key_refusal(matched.route, workspace_id, key.workspace_id)
        if refused is None:
            assert workspace_id is not None
            workspace = self.projection.workspaces.get(workspace_id)
            access = Access(
                workspace_id=workspace_id,
                role=Role.DEVELOPER,
                ancestor_super_admin=False,
                status=WorkspaceStatus.ACTIVE if workspace is None else workspace.status,
            )
            refused = refusal(matched.route, workspace_id, access)
        if refused is not None:
            metrics.authorization_refused(refused.problem)
            raise _Refused(refused.problem, refused.detail)
        return Principal(api_key_id=key.key_id, workspace_id=workspace_id, role=Role.DEVELOPER)

    async def _forward(self, request: Request, route: Route, principal: Principal) -> Response:
        try:
            body = await _body_within(request, self.settings.max_body_bytes)
        except ClientDisconnect as gone:
            # The client left, or its body did not arrive in time (`shared.http_protocol`
            # has answered it then): this answer goes nowhere.
            raise _Refused(problems.REQUEST_TIMEOUT, "The body did not arrive.") from gone
        if body is None:
            raise self._too_large()
        headers = {
            name: value for name, value in request.headers.items() if name not in FORWARDED_AWAY
        }
        headers[REQUEST_ID_HEADER] = request_id_var.get() or ""
        raw_target = request_target(
            request.scope.get("raw_path") or request.url.path.encode(),
            request.scope.get("query_string", b""),
        )
        try:
            return await self.upstreams.forward(
                route.service,
                method=request.method,
                raw_target=raw_target,
                headers=headers,
                body=body,
                principal=principal,
            )
        except TimeoutError as slow:
            raise _Refused(
                problems.GATEWAY_TIMEOUT, f"{route.service.value} did not answer in time."
            ) from slow
        except aiohttp.ClientError as failed:
            raise _Refused(
                problems.BAD_GATEWAY, f"{route.service.value} is unreachable."
            ) from failed

    def _too_large(self) -> _Refused:
        return _Refused(
            problems.PAYLOAD_TOO_LARGE,
            f"The body may have {self.settings.max_body_bytes} bytes at most.",
        )

    async def api_document(self) -> dict[str, Any]:
        """The merged document; fetched again until every service has given its own."""
        if self._api_document is not None:
            return self._api_document
        documents: dict[str, dict[str, Any]] = {}
        for service in DEPLOYED:
            try:
                documents[service.value] = await self.upstreams.openapi(service)
            except (aiohttp.ClientError, TimeoutError, ValueError) as failed:
                logger.warning("no API document from %s: %s", service.value, failed)
        merged = merge_documents(documents, title="Atrium", version="1.0.0")
        if len(documents) == len(DEPLOYED):
            self._api_document = merged
        return merged


class _Refused(Exception):  # noqa: N818 - a refusal, not an error of the gateway
    """The gateway's answer instead of forwarding the request."""

    def __init__(
        self,
        problem: ProblemType,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = problem
        self.response = problem_response(problem, detail, headers=headers, errors=errors)


def _cannot_check_now(what: str) -> _Refused:
    """503 with `Retry-After`: the service that would say is slow or down, and the caller
    may well be entitled; a moment later it may be answered."""
    return _Refused(
        problems.SERVICE_UNAVAILABLE,
        f"{what} cannot be checked just now; try again in a moment.",
        headers={"retry-after": "1"},
    )


def _refuse_keys_in_query(request: Request) -> None:
    """A key in a URL ends up in logs, histories and `Referer` headers on the way: it is
    refused, whatever the rest of the request, and the query goes no further."""
    for name, value in request.query_params.multi_items():
        if (
            value.startswith(API_KEY_PREFIX)
            or name.startswith(API_KEY_PREFIX)
            or (name.lower() in _KEY_PARAMETERS and value)
            or _KEY_SHAPED.search(name)
            or _KEY_SHAPED.search(value)
        ):
            raise _Refused(
                problems.MALFORMED_REQUEST,
                "API keys are not accepted in the query string: send the key in "
                "`Authorization: Bearer` or `X-API-Key`, and revoke this one, which may "
                "have been logged on its way here.",
            )


def _refuse_repeated_headers(request: Request) -> None:
    """A header that says one thing, sent twice, may be read one way here and another
    way by a proxy in front (the first `Authorization` here, the last there): such a
    request is refused rather than guessed at."""
    for name in _SINGLE_VALUED:
        if len(request.headers.getlist(name)) > 1:
            raise _Refused(problems.MALFORMED_REQUEST, f"The {name} header is sent more than once.")


def _refuse_malformed(request: Request, route: Route) -> None:
    """What the request itself gets wrong, whatever the workspace and whoever asks: a
    page size out of bounds, a header the operation cannot go without. Checked before
    the caller's rights, so that a caller is told what to mend also where the answer
    would otherwise be 404 (it says nothing of the workspace)."""
    errors = [
        {"field": f"header.{name}", "message": "Field required", "type": "missing"}
        for name in route.required_headers
        if name not in request.headers
    ]
    if any(_decimal(raw) not in LIMIT_RANGE for raw in request.query_params.getlist("limit")):
        errors.append(
            {
                "field": "limit",
                "message": f"must be a whole number from {LIMIT_RANGE.start} "
                f"to {LIMIT_RANGE.stop - 1}",
                "type": "limit_out_of_range",
            }
        )
    if errors:
        raise _Refused(
            problems.VALIDATION_FAILED, "Some fields are missing or not valid.", errors=errors
        )


_DECIMAL = re.compile(r"0*([0-9]{1,18})")


def _decimal(raw: str) -> int | None:
    """A `?limit=` or a `Content-Length` as a number, if it is one written in ASCII digits
    (`str.isdigit` would take `²`, which `int` refuses, and a number of thousands of
    digits, which `int` refuses to read)."""
    written = _DECIMAL.fullmatch(raw)
    return None if written is None else int(written.group(1))


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit` (whatever it declared)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime.create(
        SERVICE, settings, outbox_table=models.outbox, inbox_table=models.inbox
    )
    gateway = Gateway(settings, runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="Atrium",
        version="1.0.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=FASTAPI_TELEMETRY,
    )
    app.state.gateway = gateway
    app.state.settings = settings
    install_http_plumbing(app, gateway.readiness_checks(), public_edge=True)
    install_metrics(app, service=SERVICE.value)

    async def openapi_json(_: Request) -> Response:
        return JSONResponse(await gateway.api_document())

    async def docs(_: Request) -> Response:
        page: HTMLResponse = get_swagger_ui_html(openapi_url="/openapi.json", title="Atrium API")
        return page

    app.add_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_route("/v1/{path:path}", gateway.handle, methods=_METHODS, include_in_schema=False)
    return app


if __name__ == "__main__":
    gateway_settings = GatewaySettings()
    serve(
        create_app(gateway_settings),
        SERVICE,
        gateway_settings,
        max_connections_per_address=gateway_settings.max_connections_per_address,
    )
