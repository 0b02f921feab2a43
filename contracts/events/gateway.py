"""Events published by the `gateway`: what was asked of it with API keys."""

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import EventPayload
from contracts.topics import Topic


class RecordedRequest(BaseModel):
    """One request made with an API key, as the gateway answered it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: UUID
    route: str = Field(
        description="The operation as a template: `POST /v1/workspaces/{workspace_id}/spend`."
    )
    status: int = Field(ge=100, le=599, description="The status the caller got.")
    latency_ms: float = Field(ge=0, description="From the request's arrival to its answer.")
    at: datetime = Field(description="When the request arrived (UTC).")


class ApiRequestsRecorded(EventPayload):
    """A batch of requests made with the keys of one workspace, as one gateway process
    answered them in about a second. The batch is applied once (its event id); a
    process that is killed loses at most the batch it had not yet written."""

    event_type: ClassVar[str] = "api.request_recorded"
    event_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.GATEWAY_USAGE

    workspace_id: UUID
    root_id: UUID
    requests: tuple[RecordedRequest, ...] = Field(min_length=1)
