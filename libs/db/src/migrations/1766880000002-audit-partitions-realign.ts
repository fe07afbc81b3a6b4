import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Audit partitions made before 1766620800000 on a database whose TimeZone was not UTC (the eleven
 * the first audit migration makes, on a fresh install too) start hours off their UTC month. Next to
 * them, a UTC month's partition could not be made (its range overlaps theirs: CREATE fails, and
 * months ahead went without a partition) or left hours covered by none (inserts there failed).
 *
 * Here: such partitions that hold nothing are dropped and made again on UTC months; those holding
 * events stay as they are (retention drops them by their real bounds: libs/audit retention.ts). And
 * steward_audit_ensure_partitions makes a month's partition cover what its UTC month leaves to it
 * next to such a partition (clipped to the neighbours' bounds where they overlap it, stretched to
 * them where they leave hours between), so that every instant has one partition.
 */
export class AuditPartitionsRealign1766880000002 implements MigrationInterface {
  name = 'AuditPartitionsRealign1766880000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_audit_partition_bounds()
      RETURNS TABLE (name text, lo timestamptz, hi timestamptz)
      LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
        SELECT c.relname::text, b.m[1]::timestamptz, b.m[2]::timestamptz
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS m) b
         WHERE i.inhparent = 'audit_events'::regclass
      $$`);
    await q.query(`REVOKE ALL ON FUNCTION steward_audit_partition_bounds() FROM PUBLIC`);
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_audit_ensure_partitions(p_from date, p_months int) RETURNS int
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET TimeZone = 'UTC' AS $$
      DECLARE
        m date := date_trunc('month', p_from)::date;
        made int := 0;
        name text;
        v_lo timestamptz;
        v_hi timestamptz;
        clip timestamptz;
      BEGIN
        FOR i IN 0..p_months - 1 LOOP
          name := format('audit_events_%s', to_char(m, 'YYYY_MM'));
          IF to_regclass(name) IS NULL THEN
            v_lo := m::timestamptz;
            v_hi := (m + interval '1 month')::timestamptz;
            -- Next to a partition off its UTC month: start where it ends, end where the next begins.
            SELECT max(b.hi) INTO clip FROM steward_audit_partition_bounds() b WHERE b.lo <= v_lo AND b.hi > v_lo;
            IF clip IS NOT NULL THEN v_lo := clip; END IF;
            SELECT min(b.lo) INTO clip FROM steward_audit_partition_bounds() b WHERE b.lo > v_lo AND b.lo < v_hi;
            IF clip IS NOT NULL THEN v_hi := clip; END IF;
            -- And the hours such a partition leaves on either side (a zone's offset is under a day): covered too.
            SELECT min(b.lo) INTO clip FROM steward_audit_partition_bounds() b WHERE b.lo >= v_hi AND b.lo < v_hi + interval '1 day';
            IF clip IS NOT NULL THEN v_hi := clip; END IF;
            SELECT max(b.hi) INTO clip FROM steward_audit_partition_bounds() b WHERE b.hi <= v_lo AND b.hi > v_lo - interval '1 day';
            IF clip IS NOT NULL THEN v_lo := clip; END IF;
            IF v_lo < v_hi THEN
              EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', name, v_lo, v_hi);
              made := made + 1;
            END IF;
          END IF;
          m := (m + interval '1 month')::date;
        END LOOP;
        RETURN made;
      END $$`);
    // Empty partitions off their UTC month: made again on it.
    await q.query(`
      DO $$
      DECLARE r record; has_rows boolean;
      BEGIN
        FOR r IN SELECT b.name FROM steward_audit_partition_bounds() b
                  WHERE b.name ~ '^audit_events_[0-9]{4}_[0-9]{2}$'
                    AND (b.lo <> date_trunc('month', b.lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                      OR b.hi <> date_trunc('month', b.hi AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
        LOOP
          EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', r.name) INTO has_rows;
          IF NOT has_rows THEN
            EXECUTE format('DROP TABLE %I', r.name);
          END IF;
        END LOOP;
      END $$`);
    await q.query(`SELECT steward_audit_ensure_partitions((now() - interval '7 months')::date, 11)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE OR REPLACE FUNCTION steward_audit_ensure_partitions(p_from date, p_months int) RETURNS int
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET TimeZone = 'UTC' AS $$
      DECLARE
        m date := date_trunc('month', p_from)::date;
        made int := 0;
        name text;
      BEGIN
        FOR i IN 0..p_months - 1 LOOP
          name := format('audit_events_%s', to_char(m, 'YYYY_MM'));
          IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', name, m, (m + interval '1 month')::date);
            made := made + 1;
          END IF;
          m := (m + interval '1 month')::date;
        END LOOP;
        RETURN made;
      END $$`);
    await q.query(`DROP FUNCTION IF EXISTS steward_audit_partition_bounds()`);
  }
}
