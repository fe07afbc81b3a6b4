import { ConnectorError, ConnectorHub, createSlackServer } from '@steward/connectors';
import { type DataSource, inOrg } from '@steward/db';
import type { ActionScope, CredentialTarget } from '@steward/gate';
import type { TaskConnectorDeps } from '../agent-tasks/task-connectors';

/**
 * Slack notices through the org's Slack connector: the same built-in connector agents use
 * (@slack/web-api's chat.postMessage against the configured API base URL), posting to the channel
 * the incident settings name with the connected Slack account of the member they name. The
 * credential comes from the broker like any connector call's — decrypted for this post alone, the
 * decrypt audited (actor `system`, purpose `notice`), refused while the org's agents are paused
 * (kill switch) or when that member is no longer active — so a notice never uses a credential an
 * agent could not. A thrown error is the delivery's failure (recorded and retried by the caller).
 */
/** Not a failure: the notice cannot go out yet (the org's agents are paused) and waits without using up an attempt. */
export class NoticeDeferred extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoticeDeferred';
  }
}

/** The Slack client's own timeout (30 s) and a margin: a post is answered or failed, never abandoned while it may still land. */
const POST_TIMEOUT_MS = 35_000;

export interface SlackConnectorNoticeDeps {
  ds: DataSource;
  /** The worker's connector settings: its credential broker and the built-ins' API base URLs. */
  connectors?: Pick<TaskConnectorDeps, 'broker' | 'baseUrls'>;
}

export interface SlackNoticeSettings {
  slack_channel: string | null;
  slack_post_as: string | null;
}

/** True when the settings send Slack notices through the connector (else the incoming webhook, if any). */
export const slackThroughConnector = (s: SlackNoticeSettings): s is { slack_channel: string; slack_post_as: string } => !!s.slack_channel && !!s.slack_post_as;

export async function postSlackThroughConnector(deps: SlackConnectorNoticeDeps, orgId: string, s: SlackNoticeSettings, text: string): Promise<void> {
  if (!slackThroughConnector(s)) throw new Error('no Slack channel configured for notices');
  const broker = deps.connectors?.broker;
  if (!broker) throw new Error('this worker has no credential broker: it cannot post through the Slack connector');
  const { paused, row } = await inOrg(deps.ds, { orgId }, async (em) => ({
    paused: ((await em.query(`SELECT agents_paused_at IS NOT NULL AS paused FROM orgs WHERE id = $1`, [orgId]))[0]?.paused ?? false) as boolean,
    row: (
      (await em.query(`SELECT id, name, auth, credential_scope FROM connectors WHERE org_id = $1 AND catalog_id = 'slack' AND kind = 'builtin' AND status = 'active' ORDER BY created_at, id LIMIT 1`, [orgId])) as {
        id: string;
        name: string;
        auth: CredentialTarget['auth'];
        credential_scope: 'org' | 'user';
      }[]
    )[0],
  }));
  // The kill switch refuses every connector credential (the broker checks again): the notice waits for the resume.
  if (paused) throw new NoticeDeferred('Slack connector: agents are paused in this org (kill switch); the notice waits until they resume');
  if (!row) throw new Error('the Slack connector is not installed in this org (or not active)');
  const target: CredentialTarget = { id: row.id, name: row.name, credentialScope: row.credential_scope, auth: row.auth };
  const scope: ActionScope = { orgId, userId: s.slack_post_as, actionId: null, taskId: null, client: 'system', purpose: 'notice' };
  const hub = new ConnectorHub({ timeoutMs: POST_TIMEOUT_MS });
  try {
    await hub.addBuiltin('slack', createSlackServer({ ...(deps.connectors?.baseUrls?.slack ? { baseUrl: deps.connectors.baseUrls.slack } : {}), getCredential: () => broker.forCall(target, scope), channelNames: true }));
    await hub.callTool('slack', 'slack.post_message', { channel: s.slack_channel, text });
  } catch (err) {
    throw new Error(err instanceof ConnectorError ? `Slack connector: ${err.message}` : 'Slack connector: the post failed', { cause: err });
  } finally {
    await hub.close();
  }
}
