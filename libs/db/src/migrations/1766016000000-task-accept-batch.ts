import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tasks are accepted in batches, as the gate's claims are written: the API hands each new task
 * (its row, outbox row, first event and audit event, all built in the API) to a writer that sends
 * those arriving while the previous batch is being written as the next one — one statement and one
 * durable commit for all, each task inserted under its own org (row-level security applies as for
 * any insert) and the relay woken once. A caller that accepts a task inside its own transaction (a
 * schedule firing) calls it with one task; its org and user settings are restored. Also drops `tasks_org_list_idx`, which duplicated the
 * primary key (org_id, id) and cost every task insert an index write.
 */
export class TaskAcceptBatch1766016000000 implements MigrationInterface {
  name = 'TaskAcceptBatch1766016000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX tasks_org_list_idx`);
    await q.query(`
      CREATE FUNCTION steward_task_accept_batch(p_tasks jsonb) RETURNS text[]
      LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
      DECLARE
        t record; v_out text[] := '{}';
        v_org text := coalesce(current_setting('app.org_id', true), '');
        v_user text := coalesce(current_setting('app.user_id', true), '');
      BEGIN
        IF jsonb_typeof(p_tasks) IS DISTINCT FROM 'array' OR jsonb_array_length(p_tasks) > 1000 THEN
          RAISE EXCEPTION 'tasks must be an array of at most 1000' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR t IN
          SELECT * FROM jsonb_to_recordset(p_tasks) AS r(
            org uuid, "user" uuid, id uuid, prompt_sealed text, prompt_key text, prompt_digest text, prompt_bytes integer,
            workflow varchar, connectors text[], model_preference varchar, max_steps integer, budget_micros bigint,
            outbox_id uuid, queue varchar, job_name varchar, job_id varchar, payload jsonb,
            event_id uuid, event_at timestamptz, event text)
        LOOP
          PERFORM set_config('app.org_id', t.org::text, true), set_config('app.user_id', t."user"::text, true);
          INSERT INTO tasks (org_id, id, user_id, prompt_sealed, prompt_key, prompt_digest, prompt_bytes, workflow, connectors, model_preference, max_steps, budget_micros, event_seq)
          VALUES (t.org, t.id, t."user", decode(t.prompt_sealed, 'base64'), t.prompt_key, t.prompt_digest, t.prompt_bytes, t.workflow, t.connectors, t.model_preference, t.max_steps, t.budget_micros, 1);
          INSERT INTO outbox (org_id, id, queue, job_name, job_id, payload) VALUES (t.org, t.outbox_id, t.queue, t.job_name, t.job_id, t.payload);
          INSERT INTO task_events (org_id, task_id, seq, kind, data) VALUES (t.org, t.id, 1, 'state', '{"state":"queued"}');
          IF t.event_id IS NOT NULL THEN
            INSERT INTO audit_events (id, org_id, occurred_at, canonical) VALUES (t.event_id, t.org, t.event_at, t.event);
          END IF;
          v_out := v_out || 'accepted'::text;
        END LOOP;
        -- The relay moves outbox rows when this commits (one wake-up for the whole batch).
        PERFORM pg_notify('steward_outbox', '');
        -- Called inside a caller's transaction (a schedule firing), its org and user stay as they were.
        PERFORM set_config('app.org_id', v_org, true), set_config('app.user_id', v_user, true);
        RETURN v_out;
      END $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_task_accept_batch(jsonb) FROM PUBLIC`);
    await q.query(`GRANT EXECUTE ON FUNCTION steward_task_accept_batch(jsonb) TO steward_app`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS steward_task_accept_batch(jsonb)`);
    await q.query(`CREATE INDEX tasks_org_list_idx ON tasks (org_id, id)`);
  }
}
