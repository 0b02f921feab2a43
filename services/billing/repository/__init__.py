"""All of billing's SQL, one module per aggregate: accounts, their balances, the ledger,
avatar claims and API keys (their budgets).

Locking: a command that moves more than one balance first locks every row it will
touch with one `SELECT ... FOR UPDATE` in `(workspace_id, pool)` order
(`BalanceRepository.lock`), so two commands never wait on each other in opposite
orders. A spend made with an API key takes the key's row and its budget's month
before any balance (`ApiKeyRepository`); nothing that holds a balance's lock asks for
a key's. A plain spend touches one row and takes no lock beforehand: its conditional
`UPDATE ... WHERE balance >= amount` is the check and the lock at once.
"""
