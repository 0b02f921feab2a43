"""identity's own settings, on top of the shared ones."""

from datetime import timedelta

from pydantic import Field

from services.identity.domain import IdentityPolicy
from shared.settings import Settings


class IdentitySettings(Settings):
    max_depth: int = Field(
        default=5, ge=1, le=20, description="How many levels below the root workspaces may nest."
    )
    invitation_lifetime_hours: float = Field(
        default=7 * 24, gt=0, description="How long an invitation stays open."
    )
    housekeeping_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often expired invitations are closed and interrupted deletions finished.",
    )

    @property
    def policy(self) -> IdentityPolicy:
        return IdentityPolicy(
            max_depth=self.max_depth,
            invitation_lifetime=timedelta(hours=self.invitation_lifetime_hours),
            default_seats=self.default_plan_seats,
        )
