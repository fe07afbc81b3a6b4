'use client';

import { useRouter } from 'next/navigation';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { getSession, login, orgChoices, problemMessage, startSso, type LoginRequest } from '@/lib/api';

/**
 * Where to go after sign-in: the page that sent the browser here, only on this origin. Read as the
 * browser reads it (`/\evil.example` and `/<tab>/evil.example` are `//evil.example` to a browser):
 * anything that resolves elsewhere, or holds a backslash or a control character, goes to the dashboard.
 * So does a path that resolves to one starting "//" (`/.//evil.example`: the router takes the
 * resolved path for a URL of another site).
 */
function nextPath(): string {
  const next = new URLSearchParams(window.location.search).get('next');
  if (!next || !next.startsWith('/') || next.includes('\\') || [...next].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return '/';
  const url = URL.canParse(next, window.location.origin) ? new URL(next, window.location.origin) : null;
  return url && url.origin === window.location.origin && !url.pathname.startsWith('//') ? `${url.pathname}${url.search}${url.hash}` : '/';
}

export default function LoginPage() {
  const router = useRouter();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [org, setOrg] = useState('');
  const [totpCode, setTotpCode] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  /** The orgs of a person in several: they pick one (switching org is signing in to another). */
  const [choices, setChoices] = useState<string[]>([]);
  const totpRef = useRef<HTMLInputElement>(null);

  // Already signed in? Go straight to the dashboard.
  useEffect(() => {
    let cancelled = false;
    void getSession().then((res) => {
      if (!cancelled && res.ok) router.replace(nextPath());
    });
    return () => {
      cancelled = true;
    };
  }, [router]);

  // Sent here by the join page once an invitation was accepted.
  useEffect(() => {
    if (new URLSearchParams(window.location.search).get('joined') === '1') setNotice('You joined the organisation: sign in with the invited email and your password.');
  }, []);

  useEffect(() => {
    if (needTotp) totpRef.current?.focus();
  }, [needTotp]);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const body: LoginRequest = { email: email.trim(), password };
    if (needTotp && totpCode.trim()) body.totpCode = totpCode.replace(/\s+/g, '');
    if (org.trim()) body.org = org.trim();

    const res = await login(body);
    if (res.ok) {
      router.replace(nextPath());
      return;
    }
    setBusy(false);
    if (res.problem.code === 'mfa_required') {
      setNeedTotp(true);
      setNotice(res.problem.detail ?? 'Enter the code from your authenticator app.');
      return;
    }
    const several = orgChoices(res.problem);
    if (several.length > 1) {
      setChoices(several);
      setOrg((o) => (several.includes(o) ? o : ''));
      setError(null);
      setNotice('You belong to several organisations: choose the one to sign in to.');
      return;
    }
    setNotice(null);
    setError(problemMessage(res.problem));
  }

  async function onSso() {
    setBusy(true);
    setError(null);
    const res = await startSso(email.trim() ? { email: email.trim() } : org.trim() ? { org: org.trim() } : {});
    if (res.ok) {
      window.location.assign(res.data.authorizationUrl);
      return;
    }
    setBusy(false);
    setError(problemMessage(res.problem));
  }

  return (
    <section className="card narrow">
      <h1>Sign in</h1>
      <form onSubmit={onSubmit} className="form">
        <label>
          Email
          <input
            type="email"
            name="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {choices.length > 1 ? (
          <label>
            Organisation
            <select name="org" required value={org} onChange={(e) => setOrg(e.target.value)} data-testid="org-choice">
              <option value="">Choose…</option>
              {choices.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </label>
        ) : (
          <label>
            <span>
              Organisation <span className="muted">(slug, optional)</span>
            </span>
            <input type="text" name="org" autoComplete="organization" value={org} onChange={(e) => setOrg(e.target.value)} />
          </label>
        )}
        {needTotp && (
          <label>
            Authentication code
            <input
              ref={totpRef}
              type="text"
              name="totpCode"
              inputMode="numeric"
              autoComplete="one-time-code"
              required
              value={totpCode}
              onChange={(e) => setTotpCode(e.target.value)}
            />
          </label>
        )}
        {notice && !error && (
          <p className="notice" role="status">
            {notice}
          </p>
        )}
        {error && (
          <p className="error" role="alert" data-testid="login-error">
            {error}
          </p>
        )}
        <button type="submit" className="button" disabled={busy}>
          {busy ? 'Signing in…' : needTotp ? 'Verify and sign in' : 'Sign in'}
        </button>
      </form>
      <p className="muted">Your organisation uses an identity provider? Enter your email (or the organisation&apos;s slug), then:</p>
      <button type="button" className="button secondary" onClick={onSso} disabled={busy}>
        Sign in with single sign-on
      </button>
      <p className="muted">
        Lost your password or your authenticator? An owner or admin of your organisation can give you a recovery link; with it you set a new password.
      </p>
    </section>
  );
}
