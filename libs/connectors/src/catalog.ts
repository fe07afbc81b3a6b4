import type { ConnectorManifest, ToolSpec } from './manifest';
import { workspaceFilesManifest } from './builtin/workspace-files';
import { calendarManifest, driveManifest, gmailManifest } from './builtin/google';
import { docusignManifest, salesforceManifest, slackManifest } from './builtin/saas';
import { webManifest } from './builtin/web';

/**
 * The connector catalog. Built-in connectors run in process; the partner entries below are
 * manifests only: they run as remote MCP servers whose URL and credential the org supplies. Their
 * tool names are the mapping Steward proposes; on registration the server's real tools are
 * discovered and pinned, tools the manifest does not name resolve to `unknown` until an admin
 * maps them, and a tool whose definition differs from what was approved is held.
 */

const s = { type: 'string' };
const n = { type: 'number' };
const arr = { type: 'array', items: { type: 'string' } };
const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', properties, required });
const tool = (name: string, description: string, action: ToolSpec['action'], inputSchema: Record<string, unknown>, rest: Partial<ToolSpec> = {}): ToolSpec => ({
  name,
  description,
  action,
  inputSchema,
  ...(action === 'saas.read' ? { readOnly: true } : {}),
  ...rest,
});
const remote = (m: Omit<ConnectorManifest, 'runtime'>): ConnectorManifest => ({ ...m, runtime: { kind: 'remote' } });

export const factsetManifest = remote({
  id: 'factset',
  name: 'FactSet',
  vendor: 'FactSet',
  auth: { kind: 'oauth2', scopes: [] },
  credentialScope: 'org',
  tools: [
    tool('factset_company_profile', 'Company profile by identifier.', 'saas.read', obj({ ids: arr }, ['ids']), { extract: { resources: ['/ids'] } }),
    tool('factset_fundamentals', 'Fundamental financial data.', 'saas.read', obj({ ids: arr, metrics: arr, periodicity: s }, ['ids'])),
    tool('factset_prices', 'Historical prices.', 'saas.read', obj({ ids: arr, startDate: s, endDate: s }, ['ids'])),
    tool('factset_estimates', 'Consensus estimates.', 'saas.read', obj({ ids: arr, metrics: arr }, ['ids'])),
  ],
});

export const legalzoomManifest = remote({
  id: 'legalzoom',
  name: 'LegalZoom',
  vendor: 'LegalZoom',
  auth: { kind: 'oauth2', scopes: [] },
  credentialScope: 'org',
  tools: [
    tool('legalzoom_list_documents', 'List legal documents.', 'saas.read', obj({ query: s })),
    tool('legalzoom_get_document', 'Read a legal document.', 'saas.read', obj({ documentId: s }, ['documentId']), { extract: { resources: ['/documentId'] } }),
    tool('legalzoom_create_document', 'Draft a legal document from a template.', 'saas.write', obj({ templateId: s, fields: { type: 'object' } }, ['templateId'])),
    tool('legalzoom_send_for_signature', 'Send a document to be signed.', 'contract.send', obj({ documentId: s, signers: arr }, ['documentId', 'signers']), {
      extract: { resources: ['/documentId'], recipients: ['/signers'] },
    }),
  ],
});

export const apolloManifest = remote({
  id: 'apollo',
  name: 'Apollo.io',
  vendor: 'Apollo',
  auth: { kind: 'api_key', header: 'X-Api-Key' },
  credentialScope: 'org',
  tools: [
    tool('apollo_search_people', 'Search people by title, company, location.', 'saas.read', obj({ titles: arr, organizationDomains: arr, locations: arr })),
    tool('apollo_search_organizations', 'Search companies.', 'saas.read', obj({ query: s, domains: arr })),
    // Enrichment returns personal data about people: the policy may treat it as PII egress.
    tool('apollo_enrich_person', 'Enrich a person by email or name and company.', 'saas.read', obj({ email: s, name: s, domain: s }), { extract: { recipients: ['/email'], hosts: ['/domain'] } }),
    tool('apollo_add_to_sequence', 'Add contacts to an email sequence (emails will be sent).', 'email.send', obj({ sequenceId: s, contactEmails: arr }, ['sequenceId', 'contactEmails']), {
      extract: { resources: ['/sequenceId'], recipients: ['/contactEmails'] },
    }),
  ],
});

export const clayManifest = remote({
  id: 'clay',
  name: 'Clay',
  vendor: 'Clay',
  auth: { kind: 'api_key' },
  credentialScope: 'org',
  tools: [
    tool('clay_find_company', 'Find and enrich a company.', 'saas.read', obj({ domain: s }, ['domain']), { extract: { hosts: ['/domain'] } }),
    tool('clay_find_person', 'Find and enrich a person.', 'saas.read', obj({ email: s, linkedinUrl: s }), { extract: { recipients: ['/email'] } }),
    tool('clay_add_rows', 'Add rows to a Clay table.', 'saas.write', obj({ tableId: s, rows: { type: 'array', items: { type: 'object' } } }, ['tableId', 'rows']), { extract: { resources: ['/tableId'] } }),
  ],
});

export const outreachManifest = remote({
  id: 'outreach',
  name: 'Outreach',
  vendor: 'Outreach',
  auth: { kind: 'oauth2', authorizationUrl: 'https://api.outreach.io/oauth/authorize', tokenUrl: 'https://api.outreach.io/oauth/token', scopes: ['prospects.read', 'prospects.write', 'sequences.read', 'sequenceStates.write'] },
  credentialScope: 'user',
  tools: [
    tool('outreach_list_prospects', 'List prospects.', 'saas.read', obj({ query: s })),
    tool('outreach_get_prospect', 'Read a prospect.', 'saas.read', obj({ prospectId: s }, ['prospectId']), { extract: { resources: ['/prospectId'] } }),
    tool('outreach_update_prospect', 'Update a prospect.', 'saas.write', obj({ prospectId: s, fields: { type: 'object' } }, ['prospectId', 'fields']), { extract: { resources: ['/prospectId'] } }),
    tool('outreach_add_to_sequence', 'Enrol a prospect in a sequence (emails will be sent).', 'email.send', obj({ prospectId: s, sequenceId: s, prospectEmail: s }, ['prospectId', 'sequenceId']), {
      extract: { resources: ['/sequenceId', '/prospectId'], recipients: ['/prospectEmail'] },
    }),
  ],
});

export const msciManifest = remote({
  id: 'msci',
  name: 'MSCI',
  vendor: 'MSCI',
  auth: { kind: 'oauth2', scopes: [] },
  credentialScope: 'org',
  tools: [
    tool('msci_esg_ratings', 'ESG ratings of issuers.', 'saas.read', obj({ issuerIds: arr }, ['issuerIds']), { extract: { resources: ['/issuerIds'] } }),
    tool('msci_index_constituents', 'Constituents of an index.', 'saas.read', obj({ indexCode: s, asOf: s }, ['indexCode'])),
    tool('msci_factor_exposures', 'Factor exposures of a portfolio.', 'saas.read', obj({ holdings: { type: 'array', items: obj({ id: s, weight: n }) } }, ['holdings'])),
  ],
});

export const wordpressManifest = remote({
  id: 'wordpress',
  name: 'WordPress',
  vendor: 'WordPress',
  auth: { kind: 'oauth2', authorizationUrl: 'https://public-api.wordpress.com/oauth2/authorize', tokenUrl: 'https://public-api.wordpress.com/oauth2/token', scopes: ['posts', 'media'] },
  credentialScope: 'org',
  tools: [
    tool('wp_list_posts', 'List posts.', 'saas.read', obj({ site: s, status: s, search: s }, ['site']), { extract: { hosts: ['/site'] } }),
    tool('wp_get_post', 'Read a post.', 'saas.read', obj({ site: s, postId: n }, ['site', 'postId']), { extract: { hosts: ['/site'] } }),
    tool('wp_create_draft', 'Create a draft post (not published).', 'saas.write', obj({ site: s, title: s, content: s }, ['site', 'title', 'content']), {
      extract: { hosts: ['/site'] },
      reversible: { undo: { tool: 'wp_delete_post', args: { site: '/args/site', postId: '/result/id' } } },
    }),
    tool('wp_publish_post', 'Publish a post.', 'saas.write', obj({ site: s, postId: n }, ['site', 'postId']), { extract: { hosts: ['/site'], resources: ['/postId'] } }),
    tool('wp_delete_post', 'Move a post to the trash.', 'saas.write', obj({ site: s, postId: n }, ['site', 'postId']), { extract: { hosts: ['/site'], resources: ['/postId'] } }),
  ],
});

export const BUILTIN_MANIFESTS: readonly ConnectorManifest[] = [workspaceFilesManifest, webManifest, gmailManifest, driveManifest, calendarManifest, slackManifest, docusignManifest, salesforceManifest];
export const REMOTE_CATALOG: readonly ConnectorManifest[] = [factsetManifest, legalzoomManifest, apolloManifest, clayManifest, outreachManifest, msciManifest, wordpressManifest];
export const CATALOG: readonly ConnectorManifest[] = [...BUILTIN_MANIFESTS, ...REMOTE_CATALOG];

export function catalogEntry(id: string): ConnectorManifest | undefined {
  return CATALOG.find((m) => m.id === id);
}
