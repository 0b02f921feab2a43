"""assets' request and response bodies. Requests are strict: unknown fields, wrong
types and values out of range are refused before anything is written; a request body
builds its command."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    model_validator,
)
from typing_extensions import TypeAliasType

from contracts.events.assets import AssetKind
from services.assets.commands import ChangeAsset, CreateAsset, ShareAsset
from services.assets.domain import MAX_SHARE_TARGETS, SeenAsset, Share
from shared.fields import DisplayName
from shared.principal import Principal

PROPERTIES_DESCRIPTION = (
    "A JSON object of at most 16 KiB (compact UTF-8 JSON). The known fields of each kind "
    "are checked, other fields are kept as they are: avatar `image_url` (https, public "
    "host), `voice_id` (uuid); voice `language` (BCP-47 tag, e.g. `pt-BR`), `gender` "
    "(`female`, `male`, `neutral`); brand_kit `colors` (up to 32 `#RRGGBB`), `logo_url` "
    "(https, public host), `fonts` (up to 20 names); template `aspect_ratio` (`16:9`, "
    "`9:16`, `1:1`, `4:5`). No text in it may hold NUL or lone surrogates."
)


_Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
PropertyValue = TypeAliasType(
    "PropertyValue",
    "_Text | int | float | bool | list[PropertyValue] | _Object | None",
)
_Object = Annotated[
    dict[_Text, PropertyValue], Field(json_schema_extra={"additionalProperties": False})
]
"""An object whose keys hold no NUL either (the document's `patternProperties` admits the
keys that match; no other key is admitted)."""
"""Any JSON value whose text (keys too) holds no NUL, which PostgreSQL's JSON cannot
keep: the document says so, so that a client (and a fuzzer) knows before it asks."""


def _json_object(value: object) -> dict[str, Any]:
    """The object as sent; what its values may hold is the library's rule
    (`checked_properties`), which names each field it refuses."""
    if not isinstance(value, dict):
        msg = "should be a JSON object"
        raise ValueError(msg)
    return value


Properties = Annotated[dict[str, Any], PlainValidator(_json_object, json_schema_input_type=_Object)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateAssetRequest(_Request):
    kind: AssetKind = Field(description="An avatar takes an avatar slot and pays the avatar fee.")
    name: DisplayName
    properties: Properties = Field(default_factory=dict, description=PROPERTIES_DESCRIPTION)

    def command(
        self, caller: Principal, workspace_id: uuid.UUID, request_key: str | None
    ) -> CreateAsset:
        return CreateAsset(
            caller=caller,
            workspace_id=workspace_id,
            kind=self.kind,
            name=self.name,
            properties=self.properties,
            request_key=request_key,
        )


class ChangeAssetRequest(_Request):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [field], "properties": {field: {"not": {"type": "null"}}}}
                for field in ("name", "properties")
            ]
        }
    )

    name: DisplayName | None = None
    properties: Properties | None = Field(
        default=None,
        description="Replaces the asset's properties as a whole. " + PROPERTIES_DESCRIPTION,
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> ChangeAssetRequest:
        if self.name is None and self.properties is None:
            msg = "give a new name, new properties, or both"
            raise ValueError(msg)
        return self

    def command(
        self, caller: Principal, workspace_id: uuid.UUID, asset_id: uuid.UUID
    ) -> ChangeAsset:
        return ChangeAsset(caller, workspace_id, asset_id, self.name, self.properties)


class ShareRequest(_Request):
    workspace_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_SHARE_TARGETS)] = (
        Field(
            description="Workspaces of the same account that the caller sees (not the owner "
            "workspace). All are shared with, or none: one refused is a 404 naming it."
        )
    )

    def command(
        self, caller: Principal, workspace_id: uuid.UUID, asset_id: uuid.UUID
    ) -> ShareAsset:
        return ShareAsset(caller, workspace_id, asset_id, tuple(dict.fromkeys(self.workspace_ids)))


class AssetResponse(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID = Field(description="The workspace that owns the asset.")
    kind: AssetKind
    name: str
    properties: dict[str, Any]
    created_by: str = Field(description="`user:<id>` or `apikey:<id>`.")
    created_at: datetime
    updated_at: datetime
    shared_from: uuid.UUID | None = Field(
        default=None,
        description="Set on an asset shared with this workspace: the owner workspace. "
        "Such an asset is read-only here.",
    )

    @classmethod
    def of(cls, seen: SeenAsset) -> AssetResponse:
        asset = seen.asset
        return cls(
            id=asset.id,
            workspace_id=asset.workspace_id,
            kind=asset.kind,
            name=asset.name,
            properties=asset.properties,
            created_by=asset.created_by,
            created_at=asset.created_at,
            updated_at=asset.updated_at,
            shared_from=seen.shared_from,
        )


class ShareResponse(BaseModel):
    workspace_id: uuid.UUID
    shared_at: datetime

    @classmethod
    def of(cls, share: Share) -> ShareResponse:
        return cls(workspace_id=share.workspace_id, shared_at=share.shared_at)


class SharesResponse(BaseModel):
    items: list[ShareResponse] = Field(description="Every workspace the asset is shared with.")

    @classmethod
    def of(cls, shares: list[Share]) -> SharesResponse:
        return cls(items=[ShareResponse.of(share) for share in shares])
