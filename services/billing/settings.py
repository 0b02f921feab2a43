"""billing's own settings, on top of the shared ones."""

from typing import Literal

from pydantic import Field

from services.billing.domain import Operation, Plan, PriceTable, Terms
from shared.settings import Settings


class BillingSettings(Settings):
    """The default plan's settings are shared: identity reads the seats of a new billing
    root from them until billing's `limits.changed` arrives."""

    price_avatar_fee: int = Field(default=100, ge=0, description="Credits per avatar.")
    price_video_generation: int = Field(default=10, ge=0, description="Credits per minute.")
    price_image_creation: int = Field(default=2, ge=0, description="Credits per image.")
    price_translation: int = Field(default=5, ge=0, description="Credits per minute.")
    price_api_call: int = Field(default=0, ge=0, description="Credits per API call.")
    credits_low_threshold: int = Field(
        default=100,
        ge=0,
        description="A spend that takes a pool below this many credits announces "
        "`credits.low`; 0: never.",
    )
    payment_provider: Literal["manual"] = Field(
        default="manual", description="Who takes the money for purchases."
    )
    billing_spend_batch_ms: float = Field(
        default=2.0,
        ge=0,
        le=10_000,
        description="How long the first spend of a batch waits for others to share its "
        "transaction (group commit); 0: no wait, a batch holds the spends that came while "
        "the previous one committed.",
    )
    billing_spend_batch_max: int = Field(
        default=256, ge=1, le=10_000, description="The most spends in one transaction."
    )

    @property
    def default_plan(self) -> Plan:
        return Plan(
            code=self.default_plan_code,
            seats=self.default_plan_seats,
            avatar_slots=self.default_plan_avatar_slots,
            generative_credits=self.default_plan_generative_credits,
            api_credits=self.default_plan_api_credits,
        )

    @property
    def prices(self) -> PriceTable:
        return PriceTable(
            {
                Operation.AVATAR_FEE: self.price_avatar_fee,
                Operation.VIDEO_GENERATION: self.price_video_generation,
                Operation.IMAGE_CREATION: self.price_image_creation,
                Operation.TRANSLATION: self.price_translation,
                Operation.API_CALL: self.price_api_call,
            }
        )

    @property
    def terms(self) -> Terms:
        return Terms(
            plan=self.default_plan,
            prices=self.prices,
            credits_low_threshold=self.credits_low_threshold,
        )
