import { Client } from 'pg';
import { newId, SecretBox } from '@steward/common';
import { createDataSource, type DataSource, inOrg } from '@steward/db';
import { appendEvents, insertSchedule, insertTask, openPrompt, readEvents, scheduleAad, transcriptAad } from '@steward/jobs';
import { ConfigKeyProvider, kekVersionsInUse, openSecret, rewrapAll, sealSecret } from '@steward/vault';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-db';
import { wrappedKeySources } from './wrapped-keys';

/**
 * Rotation of the key-encryption key covers everything it protects: every wrapped data key and
 * every value sealed under the KEK in the schema is in the worker's list (so `vault:status` never
 * calls a version removable while something still needs it), and an org's agent tasks (prompt,
 * transcript, sealed events) and schedules still open with only the new version once re-wrapped.
 */
const V1 = `v1:${Buffer.alloc(32, 1).toString('base64')}`;
const V2 = `v2:${Buffer.alloc(32, 2).toString('base64')}`;

describe('key-encryption key rotation: what the worker re-wraps', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let su: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = createDataSource({ url: db.appUrl, poolMax: 3 });
    await ds.initialize();
    su = new Client({ connectionString: db.ownerUrl });
    await su.connect();
  });
  afterAll(async () => {
    await su?.end();
    await ds?.destroy();
    await db?.drop();
  });

  it('every wrapped key and KEK-sealed column of the schema is in the list', async () => {
    const covered = new Set(wrappedKeySources(new SecretBox(V1)).map((s) => `${s.table}.${s.wrappedColumn}`));
    // Sealed under the KEK but handled beside the org sources: TOTP secrets belong to users, not orgs.
    const besides = new Set(['users.totp_secret_sealed']);
    // Sealed under the audit trail's own month keys (themselves in the list as audit_keys.wrapped), not under the KEK.
    besides.add('audit_held_payloads.sealed');
    const { rows } = await su.query(
      `SELECT c.table_name || '.' || c.column_name AS col
         FROM information_schema.columns c JOIN pg_class t ON t.relname = c.table_name AND NOT t.relispartition
        WHERE c.table_schema = 'public' AND c.data_type = 'text'
          AND (c.column_name ~ '(^|_)wrapped(_key)?$' OR c.column_name ~ '(^|_)sealed$'
               OR (c.column_name ~ '_key$' AND EXISTS (SELECT 1 FROM information_schema.columns b WHERE b.table_schema = 'public' AND b.table_name = c.table_name AND b.data_type = 'bytea')))
        ORDER BY 1`,
    );
    const found = rows.map((r) => r.col as string);
    expect(found).toEqual(expect.arrayContaining(['tasks.prompt_key', 'tasks.transcript_key', 'task_events.sealed_key', 'task_schedules.prompt_key', 'credentials.wrapped_key']));
    expect(found.filter((c) => !covered.has(c) && !besides.has(c))).toEqual([]);
  });

  it("an org's task prompts, transcripts, sealed events and schedule prompts open with only the new version after the re-wrap", async () => {
    const v1 = new ConfigKeyProvider(V1);
    const orgId = newId();
    const userId = newId();
    const { taskId, scheduleId } = await inOrg(ds, { orgId, userId }, async (em) => {
      await em.query(`INSERT INTO orgs (id, name, slug, domains) VALUES ($1, 'Rotating', $2, '{}')`, [orgId, `rotating-${orgId.slice(-8)}`]);
      await em.query(`INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'Analyst', 'x')`, [userId, `analyst-${orgId.slice(-8)}@rotating.example`]);
      await em.query(`INSERT INTO memberships (id, org_id, user_id, status) VALUES ($1, $2, $3, 'active')`, [newId(), orgId, userId]);
      const { id: taskId } = await insertTask(em, v1, { orgId, userId, prompt: 'Summarise the board minutes', workflow: null, connectors: [], modelPreference: null, maxSteps: 5, budgetMicros: null });
      const transcript = await sealSecret(v1, '{"messages":[]}', transcriptAad(orgId, taskId));
      await em.query(`UPDATE tasks SET transcript_sealed = $3, transcript_key = $4 WHERE org_id = $1 AND id = $2`, [orgId, taskId, transcript.sealed, transcript.wrappedKey]);
      await appendEvents(em, v1, orgId, taskId, [{ kind: 'output', data: {}, secret: 'The minutes say: ship on Friday.' }]);
      const scheduleId = await insertSchedule(em, v1, { orgId, userId, name: 'Fridays', cron: '0 17 * * 5', timeZone: 'Asia/Tokyo', prompt: 'Weekly brief', workflow: null, connectors: [], modelPreference: null, maxSteps: 5, budgetMicros: null });
      return { taskId, scheduleId };
    });

    // The operator adds v2 (the newest wraps); the worker's job re-wraps; v1 protects nothing of this org any more.
    const both = `${V1},${V2}`;
    const report = await rewrapAll(ds, new ConfigKeyProvider(both), wrappedKeySources(new SecretBox(both)));
    expect(report.rewrapped).toMatchObject({ task_prompts: 1, task_transcripts: 1, task_events: 1, schedule_prompts: 1 });
    expect(Object.values(report.failed).every((n) => n === 0)).toBe(true);
    const inUse = await kekVersionsInUse(ds, wrappedKeySources(new SecretBox(both)));
    expect(inUse.v1).toBeUndefined();

    // With v1 removed from the configuration, everything still opens.
    const v2 = new ConfigKeyProvider(V2);
    await inOrg(ds, { orgId }, async (em) => {
      const [t] = await em.query(`SELECT prompt_sealed, prompt_key, transcript_sealed, transcript_key FROM tasks WHERE org_id = $1 AND id = $2`, [orgId, taskId]);
      expect(await openPrompt(v2, orgId, taskId, t)).toBe('Summarise the board minutes');
      expect((await openSecret(v2, { sealed: t.transcript_sealed, wrappedKey: t.transcript_key }, transcriptAad(orgId, taskId))).toString('utf8')).toBe('{"messages":[]}');
      expect((await readEvents(em, v2, orgId, taskId, 0)).flatMap((e) => (e.text === null ? [] : [e.text]))).toEqual(['The minutes say: ship on Friday.']);
      const [s] = await em.query(`SELECT prompt_sealed, prompt_key FROM task_schedules WHERE org_id = $1 AND id = $2`, [orgId, scheduleId]);
      expect((await openSecret(v2, { sealed: s.prompt_sealed, wrappedKey: s.prompt_key }, scheduleAad(orgId, scheduleId))).toString('utf8')).toBe('Weekly brief');
    });
  });
});
