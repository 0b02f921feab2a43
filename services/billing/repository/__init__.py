"""All of billing's SQL, one module per aggregate: accounts, their balances, the ledger
and avatar claims.

Locking: a command that moves more than one balance first locks every row it will
touch with one `SELECT ... FOR UPDATE` in `(workspace_id, pool)` order
(`BalanceRepository.lock`), so two commands never wait on each other in opposite
orders. A plain spend touches one row and takes no lock beforehand: its conditional
`UPDATE ... WHERE balance >= amount` is the check and the lock at once.
"""
