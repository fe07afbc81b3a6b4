import type { EntityManager } from 'typeorm';
import { type CompiledAbility, type CompiledPolicy, compileAbility, compilePolicy, type PolicyDocument } from '@steward/policy';

export interface ActivePolicy {
  id: string;
  version: number;
  compiled: CompiledPolicy;
  ability: CompiledAbility;
}

const CACHE_SIZE = 500;

/**
 * The org's active policy, compiled (the evaluator and its CASL form), cached by version id and
 * last change. Which version is active is read from the database on every call — in the caller's
 * transaction — so every process sees an activation at once; only the compiling is cached.
 */
export class PolicySource {
  private readonly cache = new Map<string, { compiled: CompiledPolicy; ability: CompiledAbility }>();

  async active(em: EntityManager, orgId: string): Promise<ActivePolicy | null> {
    const [row]: { id: string; version: number; updated_at: Date }[] = await em.query(`SELECT id, version, updated_at FROM policies WHERE org_id = $1 AND status = 'active'`, [orgId]);
    return row ? this.compiledFor(em, orgId, row) : null;
  }

  /** The compiled form of a version the caller has just read (the document is fetched only when not cached). */
  async compiledFor(em: EntityManager, orgId: string, row: { id: string; version: number; updated_at: Date }): Promise<ActivePolicy> {
    const key = `${row.id}:${new Date(row.updated_at).getTime()}`;
    let hit = this.cache.get(key);
    if (!hit) {
      const [doc]: { document: PolicyDocument }[] = await em.query('SELECT document FROM policies WHERE org_id = $1 AND id = $2', [orgId, row.id]);
      hit = { compiled: compilePolicy(doc.document), ability: compileAbility(doc.document) };
      if (this.cache.size >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, hit);
    }
    return { id: row.id, version: row.version, ...hit };
  }
}
