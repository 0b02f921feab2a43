"""billing's own settings, on top of the shared ones."""

from services.billing.domain import Plan
from shared.settings import Settings


class BillingSettings(Settings):
    """The default plan's settings are shared: identity reads the seats of a new billing
    root from them until billing's `limits.changed` arrives."""

    @property
    def default_plan(self) -> Plan:
        return Plan(
            code=self.default_plan_code,
            seats=self.default_plan_seats,
            avatar_slots=self.default_plan_avatar_slots,
            generative_credits=self.default_plan_generative_credits,
            api_credits=self.default_plan_api_credits,
        )
