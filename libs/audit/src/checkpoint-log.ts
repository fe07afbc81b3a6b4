import type { Checkpoint } from './checkpoint';

/**
 * The checkpoints an auditor holds, from a JSON-lines log (the file sink writes one checkpoint a
 * line; S3 objects can be concatenated the same way). Blank lines are skipped; a line that is not a
 * checkpoint is an error naming it (a damaged log must not be taken as "no checkpoint").
 */
export function readCheckpointLog(text: string): Checkpoint[] {
  const out: Checkpoint[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let c: Partial<Checkpoint>;
    try {
      c = JSON.parse(line) as Partial<Checkpoint>;
    } catch {
      throw new Error(`line ${i + 1} of the checkpoint log is not JSON`);
    }
    if (!c || typeof c.org !== 'string' || !Number.isSafeInteger(c.seq) || typeof c.hash !== 'string' || typeof c.statement !== 'string' || typeof c.signature !== 'string') {
      throw new Error(`line ${i + 1} of the checkpoint log is not a checkpoint`);
    }
    out.push(c as Checkpoint);
  });
  return out;
}
