"""billing: plans, credit accounts, allocations, ledger, usage, avatar-slot and seat limits."""
