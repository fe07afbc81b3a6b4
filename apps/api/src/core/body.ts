import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { ErrorCode, holdsNul } from '@steward/common';
import { problem, sendProblem } from './problem';

const FORM_PATHS = new Set(['/oauth/token', '/oauth/revoke', '/oauth/consent', '/oauth/consent/sign-in', '/oauth/consent/sso']);

/** Set on a request whose raw JSON body holds the escape `\u0000` (then its parsed body is searched). */
const MAY_HOLD_NUL = Symbol('mayHoldNul');
const NUL_ESCAPE = Buffer.from('\\u0000');
const NUL_DETAIL = 'Text may not contain the NUL character (U+0000).';
const isGatewayPath = (path: string) => path === '/mcp' || path.startsWith('/mcp/');


/**
 * JSON bodies only, with a size limit. Oversize answers 413, malformed JSON 400,
 * a body of another media type on a write 415 — all as problem+json, before any route runs.
 */
export function jsonBody(limitBytes: number) {
  const parse = express.json({
    limit: limitBytes,
    strict: true,
    type: ['application/json', 'application/*+json'],
    // A cheap look at the raw bytes; only a body that has the escape is searched once parsed.
    verify: (req, _res, buf) => {
      if (buf.includes(NUL_ESCAPE)) (req as unknown as Record<symbol, boolean>)[MAY_HOLD_NUL] = true;
    },
  });
  // OAuth's token and revocation endpoints take forms (RFC 6749 §4.1.3, RFC 7009), and so do the
  // server-rendered sign-in and consent page's forms; nothing else does.
  const form = express.urlencoded({ extended: false, limit: Math.min(limitBytes, 16_384), parameterLimit: 20 });
  const nul = (req: Request, res: Response) =>
    sendProblem(res, problem(400, ErrorCode.ValidationFailed, 'Bad request', NUL_DETAIL, { instance: req.originalUrl.split('?')[0], requestId: req.id }));
  return (req: Request, res: Response, next: NextFunction): void => {
    // In the path or query string (percent-encoded): refused before anything reads it.
    if (req.originalUrl.includes('%00')) return nul(req, res);
    const length = Number(req.headers['content-length'] ?? 0);
    const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && req.method === 'POST' && FORM_PATHS.has(req.path) && req.is('application/x-www-form-urlencoded')) {
      form(req, res, (err?: unknown) => {
        if (!err) return holdsNul(req.body) ? nul(req, res) : next();
        sendProblem(res, problem(400, ErrorCode.ValidationFailed, 'Bad request', 'The form could not be read.', { instance: req.path, requestId: req.id }));
      });
      return;
    }
    if (hasBody && !req.is(['application/json', 'application/*+json'])) {
      sendProblem(
        res,
        problem(415, ErrorCode.UnsupportedMediaType, 'Unsupported media type', 'Send JSON with Content-Type: application/json.', {
          instance: req.originalUrl.split('?')[0],
          requestId: req.id,
        }),
      );
      return;
    }
    parse(req, res, (err?: unknown) => {
      // The MCP gateway takes any JSON-RPC message: a tool's arguments may hold U+0000 (they are sealed and digested,
      // never stored as text; audit events replace it), and a refusal there is the gateway's, in JSON-RPC.
      if (!err) return (req as unknown as Record<symbol, boolean>)[MAY_HOLD_NUL] && !isGatewayPath(req.path) && holdsNul(req.body) ? nul(req, res) : next();
      const e = err as { type?: string; status?: number };
      const instance = req.originalUrl.split('?')[0];
      if (e.type === 'entity.too.large' || e.status === 413) {
        sendProblem(res, problem(413, ErrorCode.PayloadTooLarge, 'Payload too large', `The body is larger than ${limitBytes} bytes.`, { instance, requestId: req.id }));
      } else if (e.type === 'entity.parse.failed') {
        sendProblem(res, problem(400, ErrorCode.MalformedJson, 'Malformed JSON', 'The body is not valid JSON.', { instance, requestId: req.id }));
      } else {
        sendProblem(res, problem(400, ErrorCode.ValidationFailed, 'Bad request', 'The body could not be read.', { instance, requestId: req.id }));
      }
    });
  };
}
