import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agent tasks, the outbox that hands them to BullMQ, and their event stream.
 *
 * - `tasks`: one row per task. The prompt and the model transcript are sealed (AES-256-GCM under a
 *   data key wrapped by the vault's KEK, AAD bound to org and task), never stored in clear.
 *   A worker runs a task under a lease (`lease_holder`, `lease_until`) with a fencing `epoch`:
 *   the job id is `taskId-epoch`, and every step write checks the epoch, so a worker whose lease
 *   was taken over (the task re-enqueued with a higher epoch) writes nothing.
 * - `outbox`: written in the same transaction as what it announces; the relay in the worker adds
 *   the job to BullMQ (job id deduplicated) and deletes the row.
 * - `task_events`: what the SSE stream shows (steps, decisions, output), read from Postgres so it
 *   works across processes; `seq` is per task, taken under the task's row lock.
 *
 * The relay and the sweeper work before any org is known: two narrow SECURITY DEFINER functions
 * owned by `steward_lookup` return only (org_id, id) pairs; all further work runs inside the org.
 */
export class AgentTasks1764547200000 implements MigrationInterface {
  name = 'AgentTasks1764547200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tasks (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        user_id uuid NOT NULL,
        prompt_sealed bytea NOT NULL,
        prompt_key text NOT NULL,
        prompt_digest char(64) NOT NULL,
        prompt_bytes integer NOT NULL,
        workflow varchar(100),
        connectors text[] NOT NULL DEFAULT '{}',
        model_preference varchar(100),
        model varchar(100),
        state varchar(24) NOT NULL DEFAULT 'queued'
          CHECK (state IN ('queued', 'running', 'awaiting_approval', 'in_review', 'completed', 'failed', 'cancelled')),
        lease_holder varchar(200),
        lease_until timestamptz,
        epoch integer NOT NULL DEFAULT 1,
        enqueued_at timestamptz,
        step integer NOT NULL DEFAULT 0,
        turns integer NOT NULL DEFAULT 0,
        max_steps integer NOT NULL,
        budget_micros bigint,
        input_tokens bigint NOT NULL DEFAULT 0,
        output_tokens bigint NOT NULL DEFAULT 0,
        cost_micros bigint NOT NULL DEFAULT 0,
        transcript_sealed bytea,
        transcript_key text,
        tainted boolean NOT NULL DEFAULT false,
        labels text[] NOT NULL DEFAULT '{}',
        event_seq integer NOT NULL DEFAULT 0,
        error_code varchar(64),
        error_message varchar(1000),
        cancel_requested_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        CONSTRAINT tasks_pkey PRIMARY KEY (org_id, id)
      )`);
    await q.query(`CREATE INDEX tasks_user_idx ON tasks (org_id, user_id, id)`);
    await q.query(`CREATE INDEX tasks_org_list_idx ON tasks (org_id, id)`);
    await q.query(`CREATE INDEX tasks_open_idx ON tasks (lease_until, enqueued_at) WHERE state IN ('queued', 'running')`);

    await q.query(`
      CREATE TABLE outbox (
        org_id uuid NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        queue varchar(64) NOT NULL,
        job_name varchar(64) NOT NULL,
        job_id varchar(200) NOT NULL,
        payload jsonb NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT outbox_pkey PRIMARY KEY (org_id, id)
      )`);
    await q.query(`CREATE INDEX outbox_pending_idx ON outbox (created_at)`);

    await q.query(`
      CREATE TABLE task_events (
        org_id uuid NOT NULL,
        task_id uuid NOT NULL,
        seq integer NOT NULL,
        kind varchar(32) NOT NULL,
        data jsonb NOT NULL DEFAULT '{}',
        sealed bytea,
        sealed_key text,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT task_events_pkey PRIMARY KEY (org_id, task_id, seq),
        CONSTRAINT task_events_task_fkey FOREIGN KEY (org_id, task_id) REFERENCES tasks(org_id, id) ON DELETE CASCADE
      )`);

    for (const table of ['tasks', 'outbox', 'task_events']) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY tenant_isolation ON ${table} USING (org_id = steward_current_org()) WITH CHECK (org_id = steward_current_org())`);
    }
    await q.query(`GRANT SELECT, INSERT ON tasks TO steward_app`);
    await q.query(`
      GRANT UPDATE (model, state, lease_holder, lease_until, epoch, enqueued_at, step, turns, input_tokens, output_tokens, cost_micros,
                    transcript_sealed, transcript_key, tainted, labels, event_seq, error_code, error_message, cancel_requested_at,
                    updated_at, started_at, finished_at) ON tasks TO steward_app`);
    await q.query(`GRANT SELECT, INSERT, DELETE ON outbox TO steward_app`);
    await q.query(`GRANT UPDATE (attempts) ON outbox TO steward_app`);
    await q.query(`GRANT SELECT, INSERT ON task_events TO steward_app`);

    // Narrow lookups for the relay and the sweeper (no org known yet): ids only.
    await q.query(`GRANT SELECT ON outbox, tasks TO steward_lookup`);
    await q.query(`CREATE POLICY narrow_lookup ON outbox FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`CREATE POLICY narrow_lookup ON tasks FOR SELECT TO steward_lookup USING (true)`);
    await q.query(`
      CREATE FUNCTION steward_outbox_pending(p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id, id FROM outbox ORDER BY created_at LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    // Tasks to hand to a worker again: queued and enqueued more than p_queued_after seconds ago (the
    // sweeper then asks BullMQ whether the job still exists), or running with an expired lease.
    // A queued task not yet enqueued has its outbox row, which the relay moves.
    await q.query(`
      CREATE FUNCTION steward_tasks_stale(p_queued_after int, p_limit int) RETURNS TABLE (org_id uuid, id uuid)
      LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT org_id, id FROM tasks
         WHERE (state = 'queued' AND enqueued_at < now() - make_interval(secs => p_queued_after))
            OR (state = 'running' AND lease_until < now())
         ORDER BY coalesce(lease_until, enqueued_at, created_at) LIMIT least(greatest(p_limit, 1), 1000)
      $$`);
    await q.query(`GRANT CREATE ON SCHEMA public TO steward_lookup`);
    for (const fn of ['steward_outbox_pending(int)', 'steward_tasks_stale(int, int)']) {
      await q.query(`ALTER FUNCTION ${fn} OWNER TO steward_lookup`);
      await q.query(`REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`);
      await q.query(`GRANT EXECUTE ON FUNCTION ${fn} TO steward_app`);
    }
    await q.query(`REVOKE CREATE ON SCHEMA public FROM steward_lookup`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_tasks_stale(int, int)`);
    await q.query(`DROP FUNCTION IF EXISTS steward_outbox_pending(int)`);
    await q.query(`DROP TABLE task_events`);
    await q.query(`DROP TABLE outbox`);
    await q.query(`DROP TABLE tasks`);
  }
}
