import { appendFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { ConnectorManifest } from '@steward/connectors';

/**
 * A test connector with one irreversible tool, `ledger.post`, whose every execution is appended
 * (synchronously, one JSON line) to a log file: the action id it received as idempotency key,
 * the task, the lease (holder, epoch) it ran under, and when. Fault tests read the log to check
 * that no action ran twice and that no task ran on two holders at once.
 *
 * Fault knobs (a fraction 0..1 each, for a worker child process): `killBefore` kills the process
 * with SIGKILL after the claim but before the posting; `killAfter` right after the posting, before
 * its result returns (the outcome is then never written).
 */
export const ledgerManifest: ConnectorManifest = {
  id: 'ledger',
  name: 'Ledger (test)',
  vendor: 'Steward tests',
  description: 'Posts entries to a ledger; a posting cannot be undone.',
  runtime: { kind: 'builtin' },
  auth: { kind: 'none' },
  credentialScope: 'user',
  tools: [
    {
      name: 'ledger.post',
      description: 'Post an entry to the ledger (irreversible).',
      inputSchema: { type: 'object', properties: { memo: { type: 'string' }, amount: { type: 'number' } }, required: ['memo', 'amount'] },
      action: 'saas.write',
    },
  ],
} as ConnectorManifest;

export interface LedgerLine {
  key: string | null;
  taskId: string;
  holder: string;
  epoch: number;
  memo: string;
  pid: number;
  seq: number;
}

let seq = 0;

export function createLedgerServer(opts: { log: string; lease: { taskId: string; holder: string; epoch: number }; killBefore?: number; killAfter?: number; delayMs?: number }): McpServer {
  const server = new McpServer({ name: 'steward-test-ledger', version: '1.0.0' });
  server.registerTool('ledger.post', { description: 'Post an entry to the ledger (irreversible).', inputSchema: { memo: z.string().max(100), amount: z.number() } }, async (a, extra) => {
    if (opts.killBefore && Math.random() < opts.killBefore) process.kill(process.pid, 'SIGKILL');
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    const key = (extra._meta as Record<string, unknown> | undefined)?.['steward/idempotency-key'];
    const line: LedgerLine = { key: typeof key === 'string' ? key : null, taskId: opts.lease.taskId, holder: opts.lease.holder, epoch: opts.lease.epoch, memo: a.memo, pid: process.pid, seq: ++seq };
    appendFileSync(opts.log, JSON.stringify(line) + '\n');
    if (opts.killAfter && Math.random() < opts.killAfter) process.kill(process.pid, 'SIGKILL');
    return { content: [{ type: 'text', text: `posted ${a.memo}` }], structuredContent: { posted: a.memo } };
  });
  return server;
}
