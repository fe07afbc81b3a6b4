/**
 * Trust levels and the action catalog: every kind of action an agent can take, its
 * default level for a new org, its floor (no org policy can go below it) and what the
 * gate reads from a call's arguments to decide on.
 */
export const LEVELS = ['autonomous', 'batched', 'watched', 'forbidden'] as const;
export type Level = (typeof LEVELS)[number];

/** Order of restrictiveness: autonomous < batched < watched < forbidden. */
export function rank(level: Level): number {
  // (As LEVELS.indexOf(level), without the search: -1 for anything else.)
  switch (level) {
    case 'autonomous':
      return 0;
    case 'batched':
      return 1;
    case 'watched':
      return 2;
    case 'forbidden':
      return 3;
    default:
      return -1;
  }
}

export function stricter(a: Level, b: Level): Level {
  return rank(a) >= rank(b) ? a : b;
}

/** Facts the gate extracts from an action's arguments (and its task) for conditions. */
export type Fact = 'paths' | 'recipients' | 'attendees' | 'amount' | 'hosts' | 'urls' | 'channels' | 'repository' | 'content';

export type Obligation = 'keep_undo_copy' | 'redact_personal_data' | 'reversible_form';

export interface ActionTypeSpec {
  description: string;
  examples: string;
  default: Level;
  /** No org policy can decide below this. */
  floor?: Level;
  facts: Fact[];
  /** Writes that change or send something (taint and labels make these stricter). */
  outbound: boolean;
  /** Obligations that always come with the action at Batched or below. */
  obligations?: Obligation[];
}

export const ACTION_TYPES = {
  'file.read': { description: 'Read a local or workspace file', examples: 'read_file', default: 'autonomous', facts: ['paths'], outbound: false },
  'file.create': { description: 'Write a new file', examples: 'write_file (new path)', default: 'batched', facts: ['paths', 'content'], outbound: true, obligations: ['reversible_form'] },
  'file.update': { description: 'Overwrite or rename a file', examples: 'edit_file, move_file', default: 'batched', facts: ['paths', 'content'], outbound: true, obligations: ['keep_undo_copy'] },
  'file.delete': { description: 'Delete a file (moved to trash, restorable)', examples: 'delete_file', default: 'watched', facts: ['paths'], outbound: true, obligations: ['keep_undo_copy'] },
  'email.read': { description: 'Search or read mail', examples: 'gmail.search, gmail.get', default: 'batched', facts: ['recipients'], outbound: false },
  'email.draft': { description: 'Create a mail draft', examples: 'gmail.create_draft', default: 'batched', facts: ['recipients', 'content'], outbound: true },
  'email.send': { description: 'Send mail', examples: 'gmail.send', default: 'watched', floor: 'watched', facts: ['recipients', 'content'], outbound: true },
  'drive.read': { description: 'Search or read drive files', examples: 'drive.search, drive.get', default: 'autonomous', facts: ['paths'], outbound: false },
  'drive.create': { description: 'Create a drive file', examples: 'drive.create', default: 'batched', facts: ['paths', 'content'], outbound: true, obligations: ['reversible_form'] },
  'drive.update': { description: 'Edit an existing drive file', examples: 'drive.update', default: 'watched', facts: ['paths', 'content'], outbound: true, obligations: ['keep_undo_copy'] },
  'chat.send': { description: 'Post a chat message', examples: 'slack.post_message', default: 'watched', facts: ['channels', 'content'], outbound: true },
  'calendar.create': { description: 'Add a calendar event (self only; inviting others is Watched)', examples: 'calendar.create_event', default: 'batched', facts: ['attendees'], outbound: true, obligations: ['reversible_form'] },
  'web.read': { description: 'Search or fetch the web', examples: 'web.search, fetch', default: 'autonomous', facts: ['urls', 'hosts'], outbound: false },
  'saas.read': { description: 'Read from a SaaS (CRM, FactSet, MSCI, DocuSign)', examples: 'salesforce.query', default: 'autonomous', facts: ['hosts'], outbound: false },
  'saas.write': { description: 'Write to an external SaaS, publish to a CMS', examples: 'wordpress.publish', default: 'watched', facts: ['hosts', 'content'], outbound: true },
  'git.push': { description: 'Push to a git repository', examples: 'git.push', default: 'watched', facts: ['repository'], outbound: true },
  'payment.execute': { description: 'Payments, billing, transfers', examples: 'stripe.charge', default: 'forbidden', floor: 'forbidden', facts: ['amount', 'recipients'], outbound: true },
  'hr.write': { description: 'Writes to HR or payroll data', examples: 'workday.update', default: 'forbidden', facts: ['content'], outbound: true },
  'contract.send': { description: 'Send a contract with legal consequence', examples: 'docusign.send_envelope', default: 'forbidden', facts: ['recipients'], outbound: true },
  'data.egress_pii': { description: 'Customer personal data sent to an external API', examples: 'a web search or fetch carrying personal data found in its arguments', default: 'forbidden', facts: ['hosts', 'content'], outbound: true },
  'model.invoke': { description: 'What the worker sends to the model', examples: 'messages.create', default: 'autonomous', facts: ['content'], outbound: true, obligations: [] },
  unknown: { description: 'A tool nobody mapped to an action type', examples: '(any unmapped tool)', default: 'watched', floor: 'watched', facts: ['content'], outbound: true },
} as const satisfies Record<string, ActionTypeSpec>;

export type ActionType = keyof typeof ACTION_TYPES;
export const ACTION_TYPE_NAMES = Object.keys(ACTION_TYPES) as ActionType[];

export function isActionType(name: string): name is ActionType {
  return Object.prototype.hasOwnProperty.call(ACTION_TYPES, name);
}

export function floorOf(action: ActionType): Level | undefined {
  return (ACTION_TYPES[action] as ActionTypeSpec).floor;
}

/**
 * Action types whose arguments go to a third party by their nature (a web search goes to the search
 * engine, a fetch's query to the site). One that carries a person's identifiers the labeller finds
 * without mistaking other things for them (an e-mail address outside the org, an IBAN: both checked
 * by their form, the IBAN by its check digits) to a host outside the org's domains is decided as
 * `data.egress_pii`: customer personal data sent to an external API. Card, My Number and phone
 * findings do not count here: numeric ids in URLs (a post's, an order's) pass their checks often.
 * (Mail, chat and SaaS writes name their own recipients, which are personal data too: they keep
 * their type, and rules match their `pii` label and recipients.)
 */
export const EGRESS_BY_NATURE: ReadonlySet<ActionType> = new Set<ActionType>(['web.read']);
const EGRESS_KINDS: ReadonlySet<string> = new Set(['email_external', 'iban']);

/** The type an action is decided as, once its arguments (`findings`: the labeller's) are read. */
export function egressType(action: ActionType, findings: readonly { kind: string }[], leavesOrg: boolean): ActionType {
  return EGRESS_BY_NATURE.has(action) && leavesOrg && findings.some((f) => EGRESS_KINDS.has(f.kind)) ? 'data.egress_pii' : action;
}
