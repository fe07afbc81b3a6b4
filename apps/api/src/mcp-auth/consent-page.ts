import { randomBytes } from 'node:crypto';
import type { Response } from 'express';

/**
 * The server-rendered sign-in and consent page of the MCP authorization step. Plain HTML forms
 * (no script), every value escaped, a per-response style nonce, no framing, and the forms may
 * post only here (and the consent may continue only to the client's registered redirect URI).
 */
const escape = (v: string) => v.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface ConsentView {
  requestId: string;
  clientName: string | null;
  clientId: string;
  redirectUri: string;
  csrf: string;
}

function page(res: Response, status: number, title: string, body: string, formTargets: string[] = [], head = ''): void {
  const nonce = randomBytes(16).toString('base64');
  res.status(status);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader(
    'Content-Security-Policy',
    `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}; frame-ancestors 'none'; base-uri 'none'`,
  );
  res.send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">
<title>${escape(title)} · Steward</title>${head}
<style nonce="${nonce}">body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1c1c1c}label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.5rem;box-sizing:border-box}button{margin:1rem .5rem 0 0;padding:.5rem 1rem}.error{color:#a00}.muted{color:#666;font-size:.9rem}</style>
</head><body><h1>${escape(title)}</h1>
${body}
</body></html>`);
}

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escape(value)}">`;
const clientLabel = (v: Pick<ConsentView, 'clientName' | 'clientId'>) => `<strong>${escape(v.clientName ?? v.clientId)}</strong>`;

export function signInPage(res: Response, v: ConsentView, error?: { status: number; message: string }): void {
  page(
    res,
    error?.status ?? 200,
    'Sign in to Steward',
    `<p>${clientLabel(v)} asks to use Steward's MCP gateway for you. Sign in first.</p>
${error ? `<p class="error" role="alert">${escape(error.message)}</p>` : ''}
<form method="post" action="/oauth/consent/sign-in">
${hidden('request', v.requestId)}${hidden('csrf', v.csrf)}
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="org">Org (only if you belong to several)</label><input id="org" name="org" autocomplete="organization">
<label for="totpCode">Authenticator code (if enrolled)</label><input id="totpCode" name="totpCode" inputmode="numeric" autocomplete="one-time-code">
<button type="submit">Sign in</button>
</form>
<h2>Or with your organisation's single sign-on</h2>
<form method="post" action="/oauth/consent/sso">
${hidden('request', v.requestId)}${hidden('csrf', v.csrf)}
<label for="ssoEmail">Work email</label><input id="ssoEmail" name="email" type="email" autocomplete="username" required>
<button type="submit">Continue with single sign-on</button>
</form>`,
  );
}

export function consentPage(res: Response, v: ConsentView & { orgName: string; email: string }): void {
  const redirect = new URL(v.redirectUri);
  page(
    res,
    200,
    'Allow access?',
    `<p>${clientLabel(v)} wants to act for <strong>${escape(v.email)}</strong> in <strong>${escape(v.orgName)}</strong> through Steward's MCP gateway:
list the org's tools and call them as you. Every call still goes through the org's trust policy, and is audited under your name and this client's.</p>
<p class="muted">You will be sent back to ${escape(redirect.origin)}.</p>
<form method="post" action="/oauth/consent">
${hidden('request', v.requestId)}${hidden('csrf', v.csrf)}
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
    [redirect.origin],
  );
}

export function messagePage(res: Response, status: number, title: string, message: string): void {
  page(res, status, title, `<p>${escape(message)}</p>`);
}

/**
 * A page that moves the browser on by a refresh rather than a redirect: to the identity provider
 * after the SSO form (a form's redirect would have to be allowed by form-action, and the provider
 * is known only from the email), and back to the consent page after the provider (a redirect
 * chain the provider started would not carry the new SameSite=Strict session cookie).
 * `to` is a URL this API built or checked (SSO_RETURN_PATH).
 */
export function continuePage(res: Response, to: string, title = 'Signed in'): void {
  page(res, 200, title, `<p><a href="${escape(to)}">Continue</a></p>`, [], `<meta http-equiv="refresh" content="0;url=${escape(to)}">`);
}
