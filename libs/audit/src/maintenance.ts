import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { Logger } from '@steward/common';
import type { KeyProvider } from '@steward/vault';
import { type CheckpointSink, checkpointOrg, pushPending } from './checkpoint';
import type { AuditKeyring } from './keyring';
import { dropExpiredPartitions, purgeOrg } from './retention';
import { sealOrg } from './sequencer';
import { pushToSiem } from './siem';
import type { CheckpointSigner } from './signing';

export interface AuditMaintenanceOptions {
  dataSource: DataSource;
  signer: CheckpointSigner;
  sink: CheckpointSink;
  log: Logger;
  /** Pause between sealing rounds when a round found nothing to seal (a round that sealed something is followed at once by the next). */
  sealEveryMs: number;
  checkpointEverySeconds: number;
  /** Destroys month keys past retention (and shreds held copies' originals). */
  keyring: AuditKeyring;
  /** The table owner's connection, for detaching and dropping expired partitions; without it partitions are kept. */
  ownerDataSource?: DataSource;
  /** Hours between retention runs (default 6). */
  purgeEveryHours?: number;
  /** Opens SIEM sinks' HEC tokens; without it nothing is pushed to SIEMs. */
  siemKeys?: KeyProvider;
  /** Hosts allowed on non-public addresses for SIEM pushes (STEWARD_EGRESS_ALLOW_HOSTS). */
  egressAllowHosts?: readonly string[];
  /** Each SIEM sink's time budget per round (pushToSiem's budgetMs; default 30 s). */
  siemBudgetMs?: number;
  /** Called after each sealed batch has committed (benchmarks, metrics). */
  onSealed?: (orgId: string, eventIds: string[]) => void;
}

export interface AuditMaintenance {
  /** Runs one round now: seal every org, checkpoint those that are due. */
  runOnce(forceCheckpoint?: boolean): Promise<{ sealed: number; checkpoints: number }>;
  stop(): Promise<void>;
}

/**
 * The worker's audit duties: seal every org's new events (one sequencer per org at a
 * time, by lease), sign and push checkpoints at least every N seconds, and keep monthly
 * partitions created ahead of time.
 */
export function startAuditMaintenance(o: AuditMaintenanceOptions): AuditMaintenance {
  const holder = `${process.pid}-${randomBytes(4).toString('hex')}`;
  let stopped = false;
  const stopping = new AbortController();
  let lastCheckpoint = 0;
  let lastPartitions = 0;
  let lastPurge = 0;

  const orgs = async (): Promise<string[]> => (await o.dataSource.query('SELECT org_id FROM steward_list_orgs()')).map((r: { org_id: string }) => r.org_id);

  const sealAll = async (): Promise<number> => {
    let sealed = 0;
    for (const org of await orgs()) {
      // One org's failure (a statement timeout, say) is logged and leaves the others' sealing alone.
      try {
        const r = await sealOrg(o.dataSource, org, { holder, onBatch: o.onSealed && ((ids) => o.onSealed!(org, ids)) });
        sealed += r.sealed;
        if (r.fenced) o.log.warn({ orgId: org }, 'audit sequencer lost its lease mid-way (another took over)');
      } catch (err) {
        o.log.error({ orgId: org, err }, 'audit sealing failed for an org');
      }
    }
    return sealed;
  };

  /** Everything but sealing: partitions ahead, checkpoints, SIEM pushes, retention. */
  const duties = async (forceCheckpoint = false): Promise<number> => {
    let checkpoints = 0;
    if (Date.now() - lastPartitions > 6 * 3_600_000) {
      await o.dataSource.query(`SELECT steward_audit_ensure_partitions(date_trunc('month', now())::date, 4)`);
      lastPartitions = Date.now();
    }
    const due = forceCheckpoint || Date.now() - lastCheckpoint >= o.checkpointEverySeconds * 1000;
    if (due) {
      for (const org of await orgs()) {
        try {
          if (await checkpointOrg(o.dataSource, org, o.signer, o.sink)) checkpoints++;
          else await pushPending(o.dataSource, org, o.sink);
        } catch (err) {
          o.log.error({ orgId: org, err }, 'audit checkpoint failed');
        }
      }
      lastCheckpoint = Date.now();
    }
    if (Date.now() - lastPurge > (o.purgeEveryHours ?? 6) * 3_600_000) {
      lastPurge = Date.now();
      for (const org of await orgs()) {
        const r = await purgeOrg(o.dataSource, o.keyring, org);
        if (r.destroyedMonths.length) o.log.info({ orgId: org, destroyedMonths: r.destroyedMonths, heldEvents: r.heldEvents }, 'audit retention: month keys destroyed');
      }
      if (o.ownerDataSource) {
        const dropped = await dropExpiredPartitions(o.dataSource, o.ownerDataSource, o.keyring);
        if (dropped.length) o.log.info({ partitions: dropped.map((d) => d.partition) }, 'audit retention: partitions dropped');
      }
    }
    return checkpoints;
  };

  /**
   * SIEM pushes, in a loop of their own: a slow or failing SIEM endpoint (any org's) delays no
   * sealing, checkpoint, partition or retention duty, and each sink has a time budget per round.
   * A SIEM's failure is logged (never the token) and retried next round.
   */
  const siemAll = async (): Promise<void> => {
    if (!o.siemKeys) return;
    for (const org of await orgs()) {
      try {
        if (stopped) return;
        for (const s of await pushToSiem(o.dataSource, o.siemKeys, org, { allowHosts: o.egressAllowHosts, signal: stopping.signal, ...(o.siemBudgetMs !== undefined ? { budgetMs: o.siemBudgetMs } : {}) })) {
          if (s.deadLettered) o.log.warn({ orgId: org, sinkId: s.sinkId, deadLettered: s.deadLettered, error: s.error }, 'audit SIEM push: batch dead-lettered');
          else if (s.error) o.log.warn({ orgId: org, sinkId: s.sinkId, error: s.error }, 'audit SIEM push: the sink waits');
        }
      } catch (err) {
        o.log.error({ orgId: org, err: (err as Error).message }, 'audit SIEM push failed');
      }
    }
  };

  const runOnce = async (forceCheckpoint = false) => {
    const sealed = await sealAll();
    const checkpoints = await duties(forceCheckpoint);
    await siemAll();
    return { sealed, checkpoints };
  };

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let sealing: Promise<unknown> = Promise.resolve();
  let duty: Promise<unknown> = Promise.resolve();
  let pushing: Promise<unknown> = Promise.resolve();
  const sealLoop = async () => {
    while (!stopped) {
      sealing = sealAll().catch((err) => {
        o.log.error({ err }, 'audit sealing round failed');
        return 0;
      });
      const sealed = (await sealing) as number;
      // Back to back while there is work (a backlog drains at full speed); otherwise poll.
      await sleep(sealed > 0 ? 0 : o.sealEveryMs);
    }
  };
  const dutyLoop = async () => {
    // Partitions first, so that a fresh database has next months' partitions before anyone writes.
    while (!stopped) {
      duty = duties().catch((err) => o.log.error({ err }, 'audit maintenance round failed'));
      await duty;
      await sleep(1000);
    }
  };
  const siemLoop = async () => {
    while (!stopped && o.siemKeys) {
      pushing = siemAll().catch((err) => o.log.error({ err }, 'audit SIEM round failed'));
      await pushing;
      await sleep(1000);
    }
  };
  void sealLoop();
  void dutyLoop();
  void siemLoop();
  o.log.info({ holder, sealEveryMs: o.sealEveryMs, checkpointEverySeconds: o.checkpointEverySeconds, sink: o.sink.name }, 'audit maintenance started');

  return {
    runOnce,
    async stop() {
      stopped = true;
      stopping.abort();
      await Promise.all([sealing, duty, pushing]);
    },
  };
}
