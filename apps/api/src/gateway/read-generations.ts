/**
 * How many times each identical call ran in a session, the part of its action key that lets a read
 * be made again (a new action each time) while a retry of the same call stays the same action. At
 * most `max` distinct calls are remembered: past that the counts start again under a new epoch,
 * whose keys no earlier call used, so that a long busy session's memory stays bounded.
 */
export class ReadGenerations {
  private readonly counts = new Map<string, number>();
  private epoch = 0;

  constructor(private readonly max = 10_000) {}

  /** The generation of this call's next action. */
  of(base: string): string {
    const n = this.counts.get(base) ?? 0;
    return this.epoch ? `${this.epoch}.${n}` : String(n);
  }

  /** This call ran (or was refused for a reason that passes): its next one is a new action. */
  bump(base: string): void {
    if (!this.counts.has(base) && this.counts.size >= this.max) {
      this.counts.clear();
      this.epoch++;
    }
    this.counts.set(base, (this.counts.get(base) ?? 0) + 1);
  }

  get size(): number {
    return this.counts.size;
  }
}
