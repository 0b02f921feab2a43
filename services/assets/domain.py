"""The rules of an asset library, without I/O: kinds, what each kind's properties may
hold, who may see an asset, and the errors a library refuses with.

`properties` is a JSON object of at most 16 KiB (compact UTF-8 JSON). Each kind's known
fields are checked; other fields are kept as they are (a product stores its own
settings there), as long as their text is storable (no NUL, no lone surrogates):

- avatar: `image_url` (https, public host), `voice_id` (uuid);
- voice: `language` (a BCP-47 tag such as `en`, `pt-BR`, `zh-Hant-TW`), `gender`
  (`female`, `male`, `neutral`);
- brand_kit: `colors` (at most 32 `#RRGGBB`), `logo_url` (https, public host), `fonts`
  (at most 20 names of 1-100 characters);
- template: `aspect_ratio` (`16:9`, `9:16`, `1:1` or `4:5`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts import problems
from contracts.events.assets import AssetKind
from shared.errors import DomainError, ForbiddenError, NotFoundError
from shared.fields import NAME_MAX_LENGTH, HttpsUrl, PlainText
from shared.read_your_writes import NotReadyYetError

MAX_PROPERTIES_BYTES = 16 * 1024
MAX_SHARE_TARGETS = 100
"""Workspaces one request may share an asset with."""


class AssetStatus(StrEnum):
    PENDING = "pending"
    """An avatar whose slot and fee billing has not confirmed: seen by nobody."""
    ACTIVE = "active"
    DELETING = "deleting"
    """An avatar being deleted whose slot billing has not freed yet: seen by nobody."""


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Asset:
    id: uuid.UUID
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    kind: AssetKind
    name: str
    properties: dict[str, Any]
    status: AssetStatus
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def takes_a_slot(self) -> bool:
        return self.kind is AssetKind.AVATAR


@dataclass(frozen=True, slots=True)
class SeenAsset:
    """An asset as one workspace sees it: its own, or shared in from `shared_from`."""

    asset: Asset
    shared_from: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class Share:
    workspace_id: uuid.UUID
    shared_at: datetime


@dataclass(frozen=True, slots=True)
class WorkspaceCopy:
    """assets' copy of a workspace, from identity's events."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    status: WorkspaceStatus


class AvatarSlotLimitError(DomainError):
    problem = problems.AVATAR_SLOT_LIMIT


class InsufficientCreditsError(DomainError):
    problem = problems.INSUFFICIENT_CREDITS


class NotShareableError(DomainError):
    problem = problems.NOT_SHAREABLE


class AssetReadOnlyError(DomainError):
    problem = problems.ASSET_READ_ONLY


class InvalidPropertiesError(DomainError):
    problem = problems.VALIDATION_FAILED


class BillingUnavailableError(DomainError):
    """billing did not answer whether an avatar's slot is taken: the avatar stays pending
    and the reconciler finishes or undoes it."""

    problem = problems.SERVICE_UNAVAILABLE


class _Properties(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class AvatarProperties(_Properties):
    image_url: HttpsUrl | None = None
    voice_id: uuid.UUID | None = Field(default=None, strict=False)


_LANGUAGE_TAG = (
    r"^[A-Za-z]{2,3}"  # language
    r"(-[A-Za-z]{4})?"  # script
    r"(-([A-Za-z]{2}|[0-9]{3}))?"  # region
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"  # variants
)
"""A BCP-47 language tag (RFC 5646) without extensions or private use."""


class VoiceProperties(_Properties):
    language: Annotated[str, Field(pattern=_LANGUAGE_TAG, max_length=35)] | None = None
    gender: Literal["female", "male", "neutral"] | None = None


FontName = Annotated[PlainText, Field(min_length=1, max_length=NAME_MAX_LENGTH)]
HexColour = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]


class BrandKitProperties(_Properties):
    colors: Annotated[list[HexColour], Field(max_length=32)] | None = None
    logo_url: HttpsUrl | None = None
    fonts: Annotated[list[FontName], Field(max_length=20)] | None = None


class TemplateProperties(_Properties):
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:5"] | None = None


PROPERTIES_OF: dict[AssetKind, type[_Properties]] = {
    AssetKind.AVATAR: AvatarProperties,
    AssetKind.VOICE: VoiceProperties,
    AssetKind.BRAND_KIT: BrandKitProperties,
    AssetKind.TEMPLATE: TemplateProperties,
}

_STORABLE = TypeAdapter(PlainText)


def _storable_everywhere(value: object, path: str, errors: list[dict[str, Any]]) -> None:
    if isinstance(value, str):
        try:
            _STORABLE.validate_python(value)
        except ValidationError as refused:
            errors.append(_field_error(path, refused.errors()[0]["msg"], "string_not_storable"))
    elif isinstance(value, dict):
        for key, inner in value.items():
            _storable_everywhere(key, f"{path}.{key!s}", errors)
            _storable_everywhere(inner, f"{path}.{key!s}", errors)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _storable_everywhere(inner, f"{path}.{index}", errors)


def _field_error(field: str, message: str, kind: str) -> dict[str, Any]:
    return {"field": field, "message": message, "type": kind}


def checked_properties(kind: AssetKind, properties: dict[str, Any]) -> dict[str, Any]:
    """`properties` as stored, or `InvalidPropertiesError` with a field error for each
    rule it breaks."""
    size = len(
        json.dumps(properties, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    )
    if size > MAX_PROPERTIES_BYTES:
        msg = f"properties take {size} bytes as JSON; at most {MAX_PROPERTIES_BYTES} are kept."
        raise InvalidPropertiesError(msg, errors=[_field_error("properties", msg, "too_long")])
    errors: list[dict[str, Any]] = []
    _storable_everywhere(properties, "properties", errors)
    try:
        PROPERTIES_OF[kind].model_validate(properties)
    except ValidationError as refused:
        errors.extend(
            _field_error(
                ".".join(["properties", *(str(part) for part in error["loc"])]),
                error["msg"],
                error["type"],
            )
            for error in refused.errors()
        )
    if errors:
        msg = f"Some properties of this {kind.value} are not valid."
        raise InvalidPropertiesError(msg, errors=errors)
    return properties


class KeyCreditLimitReachedError(DomainError):
    problem = problems.KEY_CREDIT_LIMIT_REACHED


_REFUSALS: dict[str, type[DomainError]] = {
    problems.AVATAR_SLOT_LIMIT.slug: AvatarSlotLimitError,
    problems.INSUFFICIENT_CREDITS.slug: InsufficientCreditsError,
    problems.KEY_CREDIT_LIMIT_REACHED.slug: KeyCreditLimitReachedError,
    problems.NOT_READY_YET.slug: NotReadyYetError,
    problems.NOT_FOUND.slug: NotFoundError,
    problems.FORBIDDEN.slug: ForbiddenError,
}


def avatar_refused(problem_type: str, detail: str) -> DomainError:
    """The error to answer the caller with when billing refused an avatar's slot (and
    changed nothing): its own, or 503 for a refusal that means assets asked wrongly."""
    return _REFUSALS.get(problem_type, BillingUnavailableError)(detail)
