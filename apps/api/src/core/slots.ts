import { AppError, ErrorCode } from '@steward/common';

/**
 * Work that holds a database connection (and, for the event formats, formatting threads) for as
 * long as it streams, counted per org and in all for this process: an org's exports are bounded,
 * so that one member starting many cannot hold the connections every org's requests need.
 */
export class Slots {
  private readonly byOrg = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly what: string,
    private readonly perOrg: number,
    private readonly all: number,
  ) {}

  /** Takes a slot of the org, or refuses with 429 (nothing taken); the returned function gives it back (once). */
  take(orgId: string): () => void {
    const mine = this.byOrg.get(orgId) ?? 0;
    if (mine >= this.perOrg) throw new AppError(429, ErrorCode.RateLimited, 'Too many at once', `${this.perOrg} ${this.what} of this org are running on this server: start another when one has ended.`);
    if (this.total >= this.all) throw new AppError(429, ErrorCode.RateLimited, 'Too many at once', `This server runs ${this.all} ${this.what} at once: start another in a moment.`);
    this.byOrg.set(orgId, mine + 1);
    this.total++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total--;
      const n = (this.byOrg.get(orgId) ?? 1) - 1;
      if (n > 0) this.byOrg.set(orgId, n);
      else this.byOrg.delete(orgId);
    };
  }

  /** Running now (of an org, or in all). */
  running(orgId?: string): number {
    return orgId === undefined ? this.total : (this.byOrg.get(orgId) ?? 0);
  }
}
