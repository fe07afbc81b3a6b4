import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Verify and export look every chain entry's event up by its primary key (org_id, occurred_at, id).
 * With secondary indexes that also lead with org_id, PostgreSQL's cost model (which counts a
 * non-leading equality as selective) sometimes picked one of them for that lookup and scanned the
 * org's whole partition per entry — 0.6 ms per event instead of microseconds, found by
 * `npm run bench:audit`. The secondary indexes now lead with the column their own queries bind
 * (action, actor, transaction id), so the only indexes a lookup by key can bound are the primary
 * key and the one on id. The sequencer's (txid, id) order still comes from its index, org_id being
 * fixed by equality.
 */
export class AuditLookupIndexes1764201600000 implements MigrationInterface {
  name = 'AuditLookupIndexes1764201600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_org_txid_idx`);
    await q.query(`DROP INDEX audit_events_org_action_idx`);
    await q.query(`DROP INDEX audit_events_org_actor_idx`);
    await q.query(`CREATE INDEX audit_events_txid_idx ON audit_events (txid, org_id, id)`);
    await q.query(`CREATE INDEX audit_events_action_idx ON audit_events (action, org_id, occurred_at)`);
    await q.query(`CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, org_id, occurred_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_events_txid_idx`);
    await q.query(`DROP INDEX audit_events_action_idx`);
    await q.query(`DROP INDEX audit_events_actor_idx`);
    await q.query(`CREATE INDEX audit_events_org_txid_idx ON audit_events (org_id, txid, id)`);
    await q.query(`CREATE INDEX audit_events_org_action_idx ON audit_events (org_id, action, occurred_at)`);
    await q.query(`CREATE INDEX audit_events_org_actor_idx ON audit_events (org_id, actor_id, occurred_at)`);
  }
}
