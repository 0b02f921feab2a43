"""spends in one round trip: `billing.spend_batch`, a batch of spends in one call

One call takes a batch of spends in the caller's transaction, one after the other in
the order given, each all or nothing, and returns one outcome per spend: it reserves
their Idempotency-Keys (or finds the first answer), checks and takes the credits
(falling through to the parent where the quota is not strict, within the key's monthly
budget when spent with a key), records the balanced transaction and its lines, stages
`transaction.posted` (and `credits.low` when the balance crosses the threshold) in the
outbox with the columns `shared.outbox.Outbox.stage` writes, and remembers the answer.
A refused spend changes nothing, its key's reservation included; the others go on.

Lock order, the one every spend takes (`repository/api_keys.py`, `balances.py`), for
the whole batch before any change: the Idempotency-Keys in (scope, key) order, the API
keys' rows in id order, their budgets' rows of the month in budget order, then the
balances in (workspace, pool) order; so batches and single spends never deadlock.

Revision ID: 0009_spend_batches
Revises: 0008_outbox_headers
Create Date: 2026-12-02 06:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_spend_batches"
down_revision: str | None = "0008_outbox_headers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TYPES = [
    """
    CREATE TYPE billing.spend_request AS (
        spend integer,
        scope text,
        key text,
        fingerprint text,
        workspace_id uuid,
        pool text,
        amount bigint,
        operation text,
        quantity bigint,
        reference text,
        api_key_id uuid,
        actor text,
        threshold bigint,
        correlation_id text,
        headers jsonb
    )
    """,
    """
    CREATE TYPE billing.spend_outcome AS (
        spend integer,
        outcome text,
        balance bigint,
        key_spent bigint,
        key_limit bigint,
        answer_status integer,
        answer jsonb
    )
    """,
]

ENVELOPE = """
    CREATE FUNCTION billing.spend_envelope(
        context jsonb, event text, event_id uuid, occurred_at text, root_id uuid,
        r billing.spend_request, data jsonb
    ) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
        SELECT jsonb_build_object(
            'event_id', event_id,
            'type', context #>> ARRAY[event, 'type'],
            'version', context #> ARRAY[event, 'version'],
            'occurred_at', occurred_at,
            'producer', context ->> 'producer',
            'root_id', root_id,
            'workspace_id', r.workspace_id,
            'actor', r.actor,
            'correlation_id', r.correlation_id,
            'causation_id', NULL,
            'data', data
        )::text
    $$
"""

TAKE_SPEND = """
    CREATE FUNCTION billing.take_spend(
        r billing.spend_request, context jsonb, this_month date, occurred_at text
    ) RETURNS billing.spend_outcome
    LANGUAGE plpgsql AS $$
    DECLARE
        result billing.spend_outcome := ROW(r.spend, NULL, NULL, NULL, NULL, NULL, NULL);
        api_key record;
        account record;
        own bigint;
        parent bigint;
        from_own bigint;
        from_parent bigint;
        own_after bigint;
        lines jsonb := '[]';
        moved bigint;
        spend_id uuid := gen_random_uuid();
        posted_id uuid := gen_random_uuid();
        low_id uuid := gen_random_uuid();
    BEGIN
        IF r.api_key_id IS NOT NULL THEN
            SELECT k.workspace_id, k.budget_id, k.monthly_credit_limit, k.suspended,
                   coalesce(k.revoked_at <= now(), false) AS revoked,
                   coalesce(k.expires_at <= now(), false) AS expired,
                   coalesce(s.spent, 0) AS spent
            INTO api_key
            FROM billing.api_keys AS k
            LEFT JOIN billing.api_key_spending AS s
                ON s.budget_id = k.budget_id AND s.month = this_month
            WHERE k.key_id = r.api_key_id;
            IF NOT FOUND THEN
                result.outcome := 'key_not_arrived';
            ELSIF api_key.workspace_id <> r.workspace_id THEN
                result.outcome := 'key_of_another_workspace';
            ELSIF api_key.revoked THEN
                result.outcome := 'key_revoked';
            ELSIF api_key.expired THEN
                result.outcome := 'key_expired';
            ELSIF api_key.suspended THEN
                result.outcome := 'key_suspended';
            ELSIF api_key.monthly_credit_limit IS NOT NULL
                AND api_key.spent + r.amount > api_key.monthly_credit_limit THEN
                result.outcome := 'key_limit_reached';
                result.key_spent := api_key.spent;
                result.key_limit := api_key.monthly_credit_limit;
            END IF;
            IF result.outcome IS NOT NULL THEN
                RETURN result;
            END IF;
        END IF;

        SELECT a.root_id, a.parent_id, a.closed_at IS NOT NULL AS closed,
               (a.billing_mode = 'parent' AND NOT a.strict_quota AND a.parent_id IS NOT NULL)
                   AS falls_through
        INTO account
        FROM billing.accounts AS a
        WHERE a.workspace_id = r.workspace_id;
        IF NOT FOUND THEN
            result.outcome := 'workspace_not_arrived';
            RETURN result;
        ELSIF account.closed THEN
            result.outcome := 'workspace_closed';
            RETURN result;
        END IF;

        SELECT b.balance INTO own
        FROM billing.balances AS b
        WHERE b.workspace_id = r.workspace_id AND b.pool = r.pool;
        IF own >= r.amount THEN
            from_own := r.amount;
            from_parent := 0;
        ELSIF account.falls_through THEN
            SELECT b.balance INTO parent
            FROM billing.balances AS b
            WHERE b.workspace_id = account.parent_id AND b.pool = r.pool
            FOR UPDATE;
            IF parent IS NULL OR parent < r.amount - own THEN
                result.outcome := 'insufficient_with_parent';
                RETURN result;
            END IF;
            from_own := own;
            from_parent := r.amount - own;
        ELSE
            result.outcome := 'insufficient';
            result.balance := own;
            RETURN result;
        END IF;

        IF r.api_key_id IS NOT NULL AND r.amount > 0 THEN
            INSERT INTO billing.api_key_spending AS s (budget_id, month, spent)
            VALUES (api_key.budget_id, this_month, r.amount)
            ON CONFLICT (budget_id, month) DO UPDATE SET spent = s.spent + excluded.spent;
        END IF;
        INSERT INTO billing.transactions
            (id, kind, workspace_id, root_id, actor, pool, amount, operation, quantity,
             reference, api_key_id)
        VALUES
            (spend_id, 'spend', r.workspace_id, account.root_id, r.actor, r.pool,
             r.amount, r.operation, r.quantity, r.reference, r.api_key_id);
        own_after := own;
        IF from_own > 0 THEN
            UPDATE billing.balances AS b SET balance = b.balance - from_own
            WHERE b.workspace_id = r.workspace_id AND b.pool = r.pool
            RETURNING b.balance INTO own_after;
            INSERT INTO billing.ledger_lines (transaction_id, workspace_id, pool, amount,
                                              balance_after)
            VALUES (spend_id, r.workspace_id, r.pool, -from_own, own_after);
            lines := lines || jsonb_build_object(
                'workspace_id', r.workspace_id, 'pool', r.pool, 'amount', -from_own);
        END IF;
        IF from_parent > 0 THEN
            UPDATE billing.balances AS b SET balance = b.balance - from_parent
            WHERE b.workspace_id = account.parent_id AND b.pool = r.pool
            RETURNING b.balance INTO moved;
            INSERT INTO billing.ledger_lines (transaction_id, workspace_id, pool, amount,
                                              balance_after)
            VALUES (spend_id, account.parent_id, r.pool, -from_parent, moved);
            lines := lines || jsonb_build_object(
                'workspace_id', account.parent_id, 'pool', r.pool, 'amount', -from_parent);
        END IF;
        IF r.amount > 0 THEN
            INSERT INTO billing.ledger_lines (transaction_id, workspace_id, pool, amount,
                                              balance_after)
            VALUES (spend_id, NULL, r.pool, r.amount, NULL);
            lines := lines || jsonb_build_object(
                'workspace_id', NULL, 'pool', r.pool, 'amount', r.amount);
        END IF;

        INSERT INTO billing.outbox (event_id, topic, message_key, event_type, envelope, headers)
        VALUES (
            posted_id,
            context #>> '{posted,topic}',
            account.root_id::text,
            context #>> '{posted,type}',
            billing.spend_envelope(
                context, 'posted', posted_id, occurred_at, account.root_id, r,
                jsonb_build_object(
                    'transaction_id', spend_id,
                    'workspace_id', r.workspace_id,
                    'root_id', account.root_id,
                    'kind', 'spend',
                    'operation', r.operation,
                    'api_key_id', r.api_key_id,
                    'lines', lines
                )
            ),
            r.headers
        );
        IF from_own > 0 AND r.threshold > 0 AND own_after < r.threshold
            AND r.threshold <= own THEN
            INSERT INTO billing.outbox
                (event_id, topic, message_key, event_type, envelope, headers)
            VALUES (
                low_id,
                context #>> '{low,topic}',
                account.root_id::text,
                context #>> '{low,type}',
                billing.spend_envelope(
                    context, 'low', low_id, occurred_at, account.root_id, r,
                    jsonb_build_object(
                        'workspace_id', r.workspace_id,
                        'root_id', account.root_id,
                        'pool', r.pool,
                        'balance', own_after,
                        'threshold', r.threshold
                    )
                ),
                r.headers
            );
        END IF;

        result.outcome := 'spent';
        result.answer_status := (context ->> 'status')::integer;
        result.answer := jsonb_build_object(
            'transaction_id', spend_id,
            'pool', r.pool,
            'amount', r.amount,
            'balance_after', own_after
        );
        RETURN result;
    END
    $$
"""

SPEND_BATCH = """
    CREATE FUNCTION billing.spend_batch(spends jsonb, context jsonb)
    RETURNS SETOF billing.spend_outcome
    LANGUAGE plpgsql AS $$
    DECLARE
        r billing.spend_request;
        result billing.spend_outcome;
        earlier record;
        reserved jsonb;
        this_month date := date_trunc('month', timezone('UTC', now()))::date;
        occurred_at text := to_char(timezone('UTC', now()), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    BEGIN
        WITH reserving AS (
            INSERT INTO billing.idempotency_keys AS k (scope, key, fingerprint)
            SELECT q.scope, q.key, q.fingerprint
            FROM jsonb_populate_recordset(NULL::billing.spend_request, spends) AS q
            WHERE q.key IS NOT NULL
            ORDER BY q.scope, q.key
            ON CONFLICT DO NOTHING
            RETURNING k.scope, k.key
        )
        SELECT coalesce(jsonb_agg(jsonb_build_array(reserving.scope, reserving.key)), '[]')
        INTO reserved
        FROM reserving;

        PERFORM 1
        FROM billing.api_keys AS k
        WHERE k.key_id IN (
            SELECT q.api_key_id
            FROM jsonb_populate_recordset(NULL::billing.spend_request, spends) AS q
        )
        ORDER BY k.key_id
        FOR UPDATE;

        INSERT INTO billing.api_key_spending AS s (budget_id, month, spent)
        SELECT DISTINCT k.budget_id, this_month, 0
        FROM billing.api_keys AS k
        WHERE k.key_id IN (
            SELECT q.api_key_id
            FROM jsonb_populate_recordset(NULL::billing.spend_request, spends) AS q
        )
        ORDER BY k.budget_id
        ON CONFLICT (budget_id, month) DO UPDATE SET spent = s.spent;

        PERFORM 1
        FROM billing.balances AS b
        WHERE (b.workspace_id, b.pool) IN (
            SELECT q.workspace_id, q.pool
            FROM jsonb_populate_recordset(NULL::billing.spend_request, spends) AS q
            UNION
            SELECT a.parent_id, q.pool
            FROM jsonb_populate_recordset(NULL::billing.spend_request, spends) AS q
            JOIN billing.accounts AS a ON a.workspace_id = q.workspace_id
            WHERE a.billing_mode = 'parent' AND NOT a.strict_quota AND a.parent_id IS NOT NULL
        )
        ORDER BY b.workspace_id, b.pool
        FOR UPDATE;

        FOR r IN
            SELECT * FROM jsonb_populate_recordset(NULL::billing.spend_request, spends) AS q
            ORDER BY q.spend
        LOOP
            IF r.key IS NOT NULL
                AND NOT reserved @> jsonb_build_array(jsonb_build_array(r.scope, r.key)) THEN
                SELECT k.fingerprint, k.status, k.response INTO earlier
                FROM billing.idempotency_keys AS k
                WHERE k.scope = r.scope AND k.key = r.key;
                result := ROW(r.spend, 'replayed', NULL, NULL, NULL, earlier.status, earlier.response);
                IF earlier.fingerprint <> r.fingerprint THEN
                    result.outcome := 'key_reused';
                    result.answer_status := NULL;
                    result.answer := NULL;
                END IF;
                RETURN NEXT result;
                CONTINUE;
            END IF;
            result := billing.take_spend(r, context, this_month, occurred_at);
            IF r.key IS NOT NULL AND result.outcome = 'spent' THEN
                UPDATE billing.idempotency_keys AS k
                SET status = result.answer_status, response = result.answer
                WHERE k.scope = r.scope AND k.key = r.key;
            ELSIF r.key IS NOT NULL THEN
                DELETE FROM billing.idempotency_keys AS k
                WHERE k.scope = r.scope AND k.key = r.key;
            END IF;
            RETURN NEXT result;
        END LOOP;
    END
    $$
"""


def upgrade() -> None:
    for statement in [*TYPES, ENVELOPE, TAKE_SPEND, SPEND_BATCH]:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION billing.spend_batch(jsonb, jsonb)")
    op.execute("DROP FUNCTION billing.take_spend(billing.spend_request, jsonb, date, text)")
    op.execute(
        "DROP FUNCTION billing.spend_envelope("
        "jsonb, text, uuid, text, uuid, billing.spend_request, jsonb)"
    )
    op.execute("DROP TYPE billing.spend_outcome")
    op.execute("DROP TYPE billing.spend_request")
