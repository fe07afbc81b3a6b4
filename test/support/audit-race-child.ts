/**
 * One OS process of the audit concurrency test (libs/audit/src/trail.int-spec.ts):
 *   writer     records N events for one org, one per transaction; every 250th business
 *              transaction rolls back after writing its event; reports the rolled-back ids
 *   sequencer  seals the org in small batches with a short lease until told to stop; reports
 *              how many events it sealed
 * Arguments come as JSON in argv[2]; the result goes to the parent over IPC.
 */
import { newId } from '@steward/common';
import { createDataSource, inOrg } from '@steward/db';
import { AuditKeyring, recordEvent, sealOrg } from '@steward/audit';
import { ConfigKeyProvider } from '@steward/vault';

interface Args {
  role: 'writer' | 'sequencer';
  url: string;
  org: string;
  masterKey: string;
  k?: number;
  n?: number;
  holder?: string;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]) as Args;
  const ds = createDataSource({ url: a.url, poolMax: 2, applicationName: `race-${a.role}` });
  await ds.initialize();
  try {
    if (a.role === 'writer') {
      const keyring = new AuditKeyring(new ConfigKeyProvider(a.masterKey));
      const rolledBack: string[] = [];
      for (let i = 0; i < a.n!; i++) {
        if (i % 250 === 0) {
          const id = newId();
          rolledBack.push(id);
          await inOrg(ds, { orgId: a.org }, async (em) => {
            await recordEvent(em, keyring, { id, orgId: a.org, occurredAt: new Date(), actor: { type: 'system', id: null }, action: 'file.delete', outcome: 'success', client: 'worker', payload: { k: a.k, i } });
            throw new Error('business transaction fails after its event was written');
          }).catch(() => undefined);
        }
        await inOrg(ds, { orgId: a.org }, (em) =>
          recordEvent(em, keyring, { id: newId(), orgId: a.org, occurredAt: new Date(), actor: { type: 'system', id: null }, action: 'file.read', outcome: 'success', client: 'worker', payload: { k: a.k, i } }),
        );
      }
      process.send!({ rolledBack, pid: process.pid });
    } else {
      let stop = false;
      process.on('message', (m) => {
        if (m === 'stop') stop = true;
      });
      let sealed = 0;
      while (!stop) {
        const r = await sealOrg(ds, a.org, { holder: a.holder!, batchSize: 500, leaseSeconds: 2, maxBatches: 3 });
        sealed += r.sealed;
        await new Promise((res) => setTimeout(res, 5));
      }
      process.send!({ sealed, pid: process.pid });
    }
  } finally {
    await ds.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
