/**
 * A writer thread of the audit benchmark: records events one per transaction, as the gate
 * does (BEGIN, set the org, key lookup, INSERT, COMMIT), on its own connection pool, until
 * told to stop. Reports each event's id and commit time (epoch ms, after COMMIT returned),
 * in batches, and the count of failed appends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { newId } from '@steward/common';
import { createDataSource, inOrg } from '@steward/db';
import { AuditKeyring, recordEvent } from '@steward/audit';
import { ConfigKeyProvider } from '@steward/vault';

interface WriterData {
  url: string;
  orgIds: string[];
  masterKey: string;
  connections: number;
  /** Report ids and commit times (for the lag measure). */
  report: boolean;
}

const data = workerData as WriterData;
const port = parentPort!;

async function main(): Promise<void> {
  const ds = createDataSource({ url: data.url, poolMax: data.connections, applicationName: 'bench-writer' });
  await ds.initialize();
  const keyring = new AuditKeyring(new ConfigKeyProvider(data.masterKey));
  let stop = false;
  let ok = 0;
  let failed = 0;
  let firstError: string | null = null;
  let pending: [string, number][] = [];
  port.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  const flush = setInterval(() => {
    if (pending.length) port.postMessage({ type: 'committed', items: pending });
    pending = [];
  }, 100);
  let n = 0;
  const loop = async (lane: number) => {
    while (!stop) {
      const orgId = data.orgIds[(n++ + lane) % data.orgIds.length];
      const id = newId();
      try {
        await inOrg(ds, { orgId }, (em) =>
          recordEvent(em, keyring, {
            id,
            orgId,
            occurredAt: new Date(),
            actor: { type: 'agent_task', id: null },
            action: 'email.send',
            level: 'watched',
            decision: 'approved',
            outcome: 'success',
            connector: 'gmail',
            task: id,
            client: 'worker',
            payload: { tool: 'gmail.send', bytes: 1843 },
            sensitive: { recipients: ['k.tanaka@example.co.jp'], subject: 'Q3 board deck: numbers cross-check' },
          }),
        );
        ok++;
        if (data.report) pending.push([id, Date.now()]);
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: data.connections }, (_, lane) => loop(lane)));
  clearInterval(flush);
  if (pending.length) port.postMessage({ type: 'committed', items: pending });
  await ds.destroy();
  port.postMessage({ type: 'done', ok, failed, firstError });
}

main().catch((err) => {
  port.postMessage({ type: 'done', ok: 0, failed: -1, firstError: (err as Error).stack ?? String(err) });
});
