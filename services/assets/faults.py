"""A test-only hook: `ATRIUM_ASSETS_KILL_AT=<step>` makes the process SIGKILL itself
when an avatar reaches that step, so that a test can show that nothing is lost or
charged twice whichever step a crash interrupts. Unset, it does nothing."""

from __future__ import annotations

import os
import signal
from enum import StrEnum


class AvatarStep(StrEnum):
    BEFORE_CLAIM = "before-claim"
    """The pending avatar is committed; billing has not been asked."""
    AFTER_CLAIM = "after-claim"
    """billing took the slot and the fee; the avatar is not active yet."""
    AFTER_COMMIT = "after-commit"
    """The avatar is active; its creator has not had the answer."""
    BEFORE_RELEASE = "before-release"
    """The avatar is deleting; billing has not freed its slot."""


class Checkpoints:
    def __init__(self, kill_at: AvatarStep | None) -> None:
        self.kill_at = kill_at

    def reached(self, step: AvatarStep) -> None:
        if step is self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
