"""billing's own settings, on top of the shared ones."""

from pydantic import Field

from services.billing.domain import Plan
from shared.settings import Settings


class BillingSettings(Settings):
    default_plan_code: str = "default"
    default_plan_seats: int = Field(default=5, ge=0)
    default_plan_avatar_slots: int = Field(default=3, ge=0)
    default_plan_generative_credits: int = Field(default=0, ge=0)
    default_plan_api_credits: int = Field(default=0, ge=0)

    @property
    def default_plan(self) -> Plan:
        return Plan(
            code=self.default_plan_code,
            seats=self.default_plan_seats,
            avatar_slots=self.default_plan_avatar_slots,
            generative_credits=self.default_plan_generative_credits,
            api_credits=self.default_plan_api_credits,
        )
