"""billing's rules, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Pool(StrEnum):
    GENERATIVE_CREDITS = "generative_credits"
    API_CREDITS = "api_credits"


CONSUMABLE_POOLS: tuple[Pool, ...] = tuple(Pool)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a billing root (a workspace with `billing_mode=own`) starts with."""

    code: str
    seats: int
    avatar_slots: int
    generative_credits: int
    api_credits: int

    def opening_balance(self, pool: Pool) -> int:
        return self.generative_credits if pool is Pool.GENERATIVE_CREDITS else self.api_credits
