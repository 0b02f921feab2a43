"""assets' own settings, on top of the shared ones."""

from pydantic import Field

from services.assets.faults import AvatarStep
from shared.settings import Settings


class AssetsSettings(Settings):
    reconcile_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often avatars left pending or deleting by a stopped process are "
        "settled with billing (and once at start-up).",
    )
    unfinished_after_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long an avatar stays pending or deleting before the reconciler "
        "takes it over from the request that started it (longer than any request waits "
        "for billing).",
    )
    assets_kill_at: AvatarStep | None = Field(
        default=None,
        description="Testing only: the process kills itself (SIGKILL) when an avatar "
        "reaches this step.",
    )
