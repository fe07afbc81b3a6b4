import Anthropic from '@anthropic-ai/sdk';

/**
 * The worker's client of the Messages API: routing (per workflow, else the task's preference,
 * else the default), streamed or whole responses, and retries with backoff on 429, 529, 5xx and
 * connection faults, and on an overloaded or rate-limit error event inside a stream (the SDK's own retries are off so that every attempt is ours and counted).
 */
export interface ModelOptions {
  apiKey: string;
  baseURL: string;
  defaultModel: string;
  /** workflow key → model (the deployment's own routes: they win over everything the org sets) */
  routes: Record<string, string>;
  /** The model of each tier an org or a workflow may choose (default: every tier is `defaultModel`). */
  tiers?: Partial<Record<ModelTier, string>>;
  stream: boolean;
  maxTokens: number;
  /** True for the built-in scripted server: shown as "offline demo model", costs nothing. */
  offline: boolean;
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** How long one attempt may take (default 120 s). */
  timeoutMs?: number;
  /**
   * A task whose model is still unavailable after those retries (429, 529, 5xx, no connection) goes
   * back to the queue to try again later, holding no worker meanwhile: up to `times` (default 5)
   * times in a row (a turn the model answers starts the count again), after `baseDelayMs` (default
   * 30 s) doubling each time up to `maxDelayMs` (default 8 min); then it fails as `model_unavailable`.
   */
  requeue?: { times?: number; baseDelayMs?: number; maxDelayMs?: number };
}

export type Message = Anthropic.Message;
export type MessageParam = Anthropic.MessageParam;
export type Tool = Anthropic.Tool;

/** Prices in US dollars per million tokens (input, output), by model family. */
const PRICES: [RegExp, number, number][] = [
  [/haiku/i, 1, 5],
  [/opus/i, 15, 75],
  [/sonnet/i, 3, 15],
];

export function costMicros(model: string, offline: boolean, usage: { input_tokens: number; output_tokens: number }): number {
  if (offline) return 0;
  const [, inPrice, outPrice] = PRICES.find(([re]) => re.test(model)) ?? [/./, 3, 15];
  // $/MTok = micro-dollars per token.
  return Math.ceil(usage.input_tokens * inPrice + usage.output_tokens * outPrice);
}

export type ModelTier = 'quick' | 'standard' | 'complex';

/**
 * The model of a task: the deployment's route for its workflow, else the tier the org set for that
 * workflow, else the task's own preference, else the org's tier, else the default.
 */
export function routeModel(o: ModelOptions, t: { workflow: string | null; workflowTier?: ModelTier | null; preference: string | null; orgTier?: ModelTier | null }): string {
  const tier = (x: ModelTier | null | undefined) => (x ? o.tiers?.[x] : undefined);
  return (t.workflow && o.routes[t.workflow]) || tier(t.workflowTier) || t.preference || tier(t.orgTier) || o.defaultModel;
}

export class ModelUnavailable extends Error {
  constructor(
    readonly status: number | null,
    message: string,
    /** A fault that may pass (retried to the end): the task may try again later. */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'ModelUnavailable';
  }
}

const RETRYABLE = new Set([408, 409, 429, 500, 502, 503, 504, 529]);
const RETRYABLE_TYPES = new Set(['overloaded_error', 'rate_limit_error', 'api_error', 'timeout_error']);

export class ModelClient {
  private readonly client: Anthropic;

  constructor(readonly options: ModelOptions) {
    this.client = new Anthropic({ apiKey: options.apiKey, baseURL: options.baseURL, maxRetries: 0, timeout: options.timeoutMs ?? 120_000 });
  }

  /**
   * One turn, with retries. `onRetry` hears each retried fault (status, delay); `onLost` each attempt
   * that failed after the request may have reached the model (no answer in time, the connection lost):
   * the API may have generated, and billed, its answer.
   */
  async create(
    params: { model: string; system: string; messages: MessageParam[]; tools: Tool[] },
    signal: AbortSignal,
    onRetry?: (status: number | null, delayMs: number) => void,
    onLost?: () => void,
    /** Try again after an attempt that may have been generated (default); false: give up at once (transient), the caller booking it before any other try. */
    retryLost = true,
  ): Promise<Message> {
    const attempts = this.options.retry?.attempts ?? 6;
    const base = this.options.retry?.baseDelayMs ?? 500;
    const max = this.options.retry?.maxDelayMs ?? 30_000;
    const body = { model: params.model, max_tokens: this.options.maxTokens, system: params.system, messages: params.messages, ...(params.tools.length ? { tools: params.tools } : {}) };
    for (let attempt = 1; ; attempt++) {
      // A stream's answer has begun once its response came (a 200): what breaks after that may have been generated.
      let begun = false;
      try {
        if (this.options.stream) {
          const stream = this.client.messages.stream(body, { signal });
          stream.on('connect', () => (begun = true));
          const message = await stream.finalMessage();
          // A stream that ended without its message_stop (a proxy closing it politely) gives the part it got: not an answer.
          if (message.stop_reason == null) throw new Error('the streamed answer ended before its end');
          return message;
        }
        return await this.client.messages.create(body, { signal });
      } catch (err) {
        if (signal.aborted) throw err;
        const status = err instanceof Anthropic.APIError ? (err.status ?? null) : null;
        // An error event inside a 200 stream has no status: its type says whether it is transient.
        const type = err instanceof Anthropic.APIError ? ((err as { type?: string }).type ?? (err.error as { error?: { type?: string } } | undefined)?.error?.type) : undefined;
        // A streamed answer that broke off without an error of the API's (the connection dropped after the 200, the stream ended early).
        const cut = begun && !(err instanceof Anthropic.APIError);
        const retryable = cut || err instanceof Anthropic.APIConnectionError || (status !== null && RETRYABLE.has(status)) || (status === null && type !== undefined && RETRYABLE_TYPES.has(type));
        // An answer refused with a status (429, 529, 5xx) was not generated; one that never came (no answer
        // in time, the connection lost) may have been, and so may one that broke off with an error event
        // inside its 200 stream (generated, and billed, up to there).
        const lost =
          err instanceof Anthropic.APIConnectionError ? 'the model gave no answer (no answer in time, or the connection broke off) after it may have generated one'
          : err instanceof Anthropic.APIError && status === null ? `the model's answer broke off with an error (${type ?? 'unknown'}) after it had begun`
          : cut ? "the model's streamed answer broke off (the connection ended before the answer did) after it had begun"
          : null;
        if (lost !== null) {
          onLost?.();
          if (!retryLost) throw new ModelUnavailable(status, lost, retryable);
        }
        if (!retryable) throw new ModelUnavailable(status, err instanceof Error ? err.message.slice(0, 300) : 'model call failed');
        if (attempt >= attempts) throw new ModelUnavailable(status, `the model is unavailable after ${attempts} attempts (last status ${status ?? 'connection error'})`, true);
        const header = err instanceof Anthropic.APIError ? Number(err.headers?.get?.('retry-after')) : NaN;
        const backoff = Math.min(max, base * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
        const delay = Number.isFinite(header) && header > 0 ? Math.min(max, header * 1000) : backoff;
        onRetry?.(status, Math.round(delay));
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
