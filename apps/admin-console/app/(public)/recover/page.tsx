'use client';

import { useEffect, useState, type FormEvent } from 'react';
import { problemWithFields, recoverAccount, type Problem } from '@/lib/api';
import { takeTokenFromLocation, tokenFromInput } from '@/lib/link-token';

/** The API's minimum for a password. */
const MIN_PASSWORD = 12;

/** What a person should read when the link was refused: what happened and what to do next. */
function recoverError(p: Problem): string {
  if (p.status === 404) return 'This recovery link no longer works: it has expired (a link lasts 24 hours), was already used or was withdrawn. Ask an owner or admin of your organisation for a new one.';
  if (p.status === 403) return `${problemWithFields(p)}${/new one/i.test(p.detail ?? '') ? '' : ' Ask an owner or admin of your organisation for a new link.'}`;
  if (p.status === 429) return 'Too many attempts from here: wait a minute, then try again.';
  return problemWithFields(p);
}

/**
 * Setting a new password with a recovery link an owner or admin issued (`/recover#token=sta_…`).
 * The token comes from the link's fragment, never a query string, so no server logs it; it can be
 * pasted too. Using the link ends the account's sessions, API keys and MCP grants.
 */
export default function RecoverPage() {
  const [token, setToken] = useState('');
  const [fromLink, setFromLink] = useState(false);
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);

  useEffect(() => {
    const take = () => {
      const t = takeTokenFromLocation();
      if (t) {
        setToken(t);
        setFromLink(true);
        setError(null);
        setDone(false);
      }
    };
    take();
    window.addEventListener('hashchange', take);
    return () => window.removeEventListener('hashchange', take);
  }, []);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    const t = tokenFromInput(token);
    if (!t) return setError('Paste the recovery link or its token.');
    if (password.length < MIN_PASSWORD) return setError(`The new password is too short: use at least ${MIN_PASSWORD} characters.`);
    if (password !== repeat) return setError('The two passwords differ: type the same new password twice.');
    setBusy(true);
    const res = await recoverAccount({ token: t, newPassword: password });
    setBusy(false);
    if (!res.ok) return setError(recoverError(res.problem));
    setToken('');
    setPassword('');
    setRepeat('');
    setDone(true);
  }

  if (done) {
    return (
      <section className="card narrow">
        <h1>Your new password is set</h1>
        <p role="status">
          Sign in with your email and the new password. Everything that was signed in as you before — sessions, API keys, connected MCP clients — has been signed out.
        </p>
        <p className="muted">If your link also removed your authenticator, set up a new one under Account once you are signed in.</p>
        <p>
          <a className="button" href="/login">
            Sign in
          </a>
        </p>
      </section>
    );
  }

  return (
    <section className="card narrow">
      <h1>Set a new password</h1>
      <p>An owner or admin of your organisation gave you a recovery link. Choose a new password for your account; the link works once.</p>
      <form onSubmit={onSubmit} className="form" noValidate>
        <label>
          Recovery link or token
          <input name="token" required autoComplete="off" spellCheck={false} value={token} onChange={(e) => (setToken(e.target.value), setFromLink(false))} />
        </label>
        {fromLink && (
          <p className="notice" role="status">
            Filled in from your recovery link.
          </p>
        )}
        <label>
          New password (at least {MIN_PASSWORD} characters)
          <input type="password" name="newPassword" required minLength={MIN_PASSWORD} maxLength={256} autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <label>
          Repeat the new password
          <input type="password" name="repeat" required minLength={MIN_PASSWORD} maxLength={256} autoComplete="new-password" value={repeat} onChange={(e) => setRepeat(e.target.value)} />
        </label>
        {error && (
          <p className="error" role="alert" data-testid="recover-error">
            {error}
          </p>
        )}
        <button type="submit" className="button" disabled={busy}>
          {busy ? 'Setting…' : 'Set new password'}
        </button>
      </form>
    </section>
  );
}
