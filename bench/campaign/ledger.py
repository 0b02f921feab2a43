"""The campaign's checks of billing's ledger: transactions balanced, balances that are
their lines, spends and avatar fees that paid what they were priced, and the counts
that each API key's spending keeps."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from bench.campaign.reading import Scope, Violation, rows


async def check_ledger(connection: AsyncConnection, scope: Scope) -> list[Violation]:
    found: list[Violation] = []
    unbalanced = await rows(
        connection,
        """SELECT l.transaction_id, l.pool, sum(l.amount) AS total
           FROM billing.ledger_lines AS l JOIN billing.transactions AS t
             ON t.id = l.transaction_id
           WHERE t.root_id = ANY(:roots)
           GROUP BY l.transaction_id, l.pool HAVING sum(l.amount) <> 0""",
        scope,
    )
    found.extend(
        Violation(
            "ledger-balanced",
            f"transaction {row.transaction_id}: its {row.pool} lines sum to {row.total}",
        )
        for row in unbalanced
    )
    unkeyed = await rows(
        connection,
        """SELECT t.id, t.workspace_id, count(k.key) AS answers
           FROM billing.transactions AS t
           LEFT JOIN billing.idempotency_keys AS k
             ON k.response ->> 'transaction_id' = t.id::text
           WHERE t.root_id = ANY(:roots) AND t.kind = 'spend'
           GROUP BY t.id, t.workspace_id HAVING count(k.key) <> 1""",
        scope,
    )
    found.extend(
        Violation(
            "spend-applied-once",
            f"spend {row.id} of {row.workspace_id} is the answer of {row.answers} "
            "Idempotency-Keys, not one",
        )
        for row in unkeyed
    )
    balances = await rows(
        connection,
        """SELECT b.workspace_id, b.pool, b.balance, a.closed_at IS NOT NULL AS closed,
                  coalesce(sums.total, 0) AS total, last.balance_after AS last_after
           FROM billing.balances AS b
           JOIN billing.accounts AS a ON a.workspace_id = b.workspace_id
           LEFT JOIN LATERAL (
               SELECT sum(l.amount) AS total FROM billing.ledger_lines AS l
               WHERE l.workspace_id = b.workspace_id AND l.pool = b.pool) AS sums ON true
           LEFT JOIN LATERAL (
               SELECT l.balance_after FROM billing.ledger_lines AS l
               WHERE l.workspace_id = b.workspace_id AND l.pool = b.pool
               ORDER BY l.id DESC LIMIT 1) AS last ON true
           WHERE a.root_id = ANY(:roots)
           ORDER BY b.workspace_id, b.pool""",
        scope,
    )
    for row in balances:
        where = f"workspace {row.workspace_id}, {row.pool}"
        if row.balance != row.total:
            found.append(
                Violation(
                    "balance-is-sum-of-lines",
                    f"{where}: balance {row.balance}, its ledger lines sum to {row.total}",
                )
            )
        if row.balance < 0:
            found.append(Violation("balance-not-negative", f"{where}: balance {row.balance}"))
        if row.last_after is not None and row.balance != row.last_after:
            found.append(
                Violation(
                    "balance-is-last-line",
                    f"{where}: balance {row.balance}, its last line left {row.last_after}",
                )
            )
        if row.closed and row.balance != 0:
            found.append(
                Violation(
                    "closed-account-empty",
                    f"{where}: the workspace is deleted and still holds {row.balance}",
                )
            )
    return found


async def check_spending(connection: AsyncConnection, scope: Scope) -> list[Violation]:
    """A spend or an avatar fee pays the world what it was priced; a key's monthly
    budget and apikeys' usage count what was spent with it."""
    found: list[Violation] = []
    mispriced = await rows(
        connection,
        """SELECT t.id, t.kind, t.amount, coalesce(sum(l.amount), 0) AS paid
           FROM billing.transactions AS t
           LEFT JOIN billing.ledger_lines AS l
             ON l.transaction_id = t.id AND l.workspace_id IS NULL AND l.pool = t.pool
           WHERE t.root_id = ANY(:roots) AND t.kind IN ('spend', 'avatar_claim')
           GROUP BY t.id, t.kind, t.amount HAVING coalesce(sum(l.amount), 0) <> t.amount
           ORDER BY t.id""",
        scope,
    )
    found.extend(
        Violation(
            "charged-as-priced",
            f"{row.kind} {row.id} was priced {row.amount} and paid {row.paid}",
        )
        for row in mispriced
    )
    budgets = await rows(
        connection,
        """WITH keys AS (
               SELECT key_id, budget_id FROM billing.api_keys WHERE root_id = ANY(:roots)),
           spent AS (
               SELECT k.budget_id,
                      date_trunc('month', timezone('UTC', t.created_at))::date AS month,
                      sum(t.amount) AS total
               FROM billing.transactions AS t JOIN keys AS k ON k.key_id = t.api_key_id
               WHERE t.kind IN ('spend', 'avatar_claim') AND t.amount > 0
               GROUP BY 1, 2)
           SELECT coalesce(s.budget_id, b.budget_id) AS budget_id,
                  coalesce(s.month, b.month) AS month,
                  coalesce(b.spent, 0) AS counted, coalesce(s.total, 0) AS total
           FROM spent AS s
           FULL JOIN (SELECT * FROM billing.api_key_spending
                      WHERE budget_id IN (SELECT budget_id FROM keys)) AS b
             ON b.budget_id = s.budget_id AND b.month = s.month
           WHERE coalesce(b.spent, 0) <> coalesce(s.total, 0)""",
        scope,
    )
    found.extend(
        Violation(
            "key-budget-counts-spends",
            f"key budget {row.budget_id} counted {row.counted} spent in {row.month}, "
            f"its spends total {row.total}",
        )
        for row in budgets
    )
    usage = await rows(
        connection,
        """WITH paid AS (
               SELECT t.api_key_id, sum(l.amount) AS total
               FROM billing.transactions AS t
               JOIN billing.ledger_lines AS l ON l.transaction_id = t.id
               WHERE t.root_id = ANY(:roots) AND t.api_key_id IS NOT NULL
                 AND l.workspace_id IS NULL AND l.pool = 'api_credits' AND l.amount > 0
               GROUP BY t.api_key_id),
           counted AS (
               SELECT u.key_id, sum(u.credits_spent) AS total
               FROM apikeys.key_usage_days AS u
               JOIN apikeys.api_keys AS k ON k.id = u.key_id
               WHERE k.root_id = ANY(:roots)
               GROUP BY u.key_id)
           SELECT coalesce(p.api_key_id, c.key_id) AS key_id,
                  coalesce(p.total, 0) AS paid, coalesce(c.total, 0) AS counted
           FROM paid AS p FULL JOIN counted AS c ON c.key_id = p.api_key_id
           WHERE coalesce(p.total, 0) <> coalesce(c.total, 0)""",
        scope,
    )
    found.extend(
        Violation(
            "key-usage-counts-credits",
            f"key {row.key_id} paid {row.paid} API credits, apikeys counted {row.counted}",
        )
        for row in usage
    )
    return found
