'use client';

import { useRouter } from 'next/navigation';
import { useEffect, useState, type FormEvent } from 'react';
import { acceptInvitation, getSession, problemWithFields, type Problem, type Session } from '@/lib/api';
import { takeTokenFromLocation, tokenFromInput } from '@/lib/link-token';

type Mode = 'new' | 'existing' | 'signed-in';

/** The API's minimum for a new account's password. */
const MIN_PASSWORD = 12;

/** What a person should read when joining failed: the API's own words, clearer where they are terse. */
function joinError(p: Problem): string {
  if (p.status === 404) return 'This invitation no longer works: it has expired, was already used or was revoked. Ask whoever invited you for a new one.';
  if (p.status === 429) return 'Too many attempts from here: wait a minute, then try again.';
  return problemWithFields(p);
}

/**
 * Accepting an invitation (`/join#token=sti_…`, the link the inviter copied from the People page):
 * as a new account (name and password), with the existing account's password, or, signed in as the
 * invited account, with no password (the way for an account with an authenticator). The token comes
 * from the link's fragment, never a query string, so no server logs it; it can be pasted too.
 */
export default function JoinPage() {
  const router = useRouter();
  const [token, setToken] = useState('');
  const [fromLink, setFromLink] = useState(false);
  const [signedIn, setSignedIn] = useState<Session | null>(null);
  const [mode, setMode] = useState<Mode>('new');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [joined, setJoined] = useState(false);

  useEffect(() => {
    const take = () => {
      const t = takeTokenFromLocation();
      if (t) {
        setToken(t);
        setFromLink(true);
        setError(null);
      }
    };
    take();
    window.addEventListener('hashchange', take);
    return () => window.removeEventListener('hashchange', take);
  }, []);

  useEffect(() => {
    let cancelled = false;
    void getSession().then((res) => {
      if (cancelled || !res.ok) return;
      setSignedIn(res.data);
      // Signed in, most likely as the invited account: joining needs no password then.
      setMode((m) => (m === 'new' ? 'signed-in' : m));
    });
    return () => {
      cancelled = true;
    };
  }, []);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(null);
    const t = tokenFromInput(token);
    if (!t) return setError('Paste the invitation link or its token.');
    if (mode === 'new') {
      if (!name.trim()) return setError('Give your name: it is how the organisation will see you.');
      if (password.length < MIN_PASSWORD) return setError(`The password is too short: use at least ${MIN_PASSWORD} characters.`);
      if (password !== repeat) return setError('The two passwords differ: type the same password twice.');
    }
    if (mode === 'existing' && !password) return setError("Give your account's password.");
    setBusy(true);
    const res = await acceptInvitation(mode === 'new' ? { token: t, name: name.trim(), password } : mode === 'existing' ? { token: t, password } : { token: t });
    setBusy(false);
    if (!res.ok) return setError(joinError(res.problem));
    setPassword('');
    setRepeat('');
    if (mode === 'signed-in') setJoined(true);
    else router.replace('/login?joined=1');
  }

  if (joined) {
    return (
      <section className="card narrow">
        <h1>You joined the organisation</h1>
        <p role="status">
          Your account {signedIn?.user.email} is now a member. Choose the organisation with the switcher in the console&apos;s header, or sign in to it.
        </p>
        <p>
          <a href="/">Go to the console</a>
        </p>
      </section>
    );
  }

  return (
    <section className="card narrow">
      <h1>Join an organisation</h1>
      <p>You were invited to an organisation on Steward. Create your account, or join with the account you already have.</p>
      <form onSubmit={onSubmit} className="form" noValidate>
        <label>
          Invitation link or token
          <input name="token" required autoComplete="off" spellCheck={false} value={token} onChange={(e) => (setToken(e.target.value), setFromLink(false))} />
        </label>
        {fromLink && (
          <p className="notice" role="status">
            Filled in from your invitation link.
          </p>
        )}
        <fieldset className="choices">
          <legend>How do you join?</legend>
          <label className="choice">
            <input type="radio" name="mode" value="new" checked={mode === 'new'} onChange={() => setMode('new')} />I am new to Steward: create my account
          </label>
          <label className="choice">
            <input type="radio" name="mode" value="existing" checked={mode === 'existing'} onChange={() => setMode('existing')} />I already have a Steward account with the invited email
          </label>
          {signedIn && (
            <label className="choice">
              <input type="radio" name="mode" value="signed-in" checked={mode === 'signed-in'} onChange={() => setMode('signed-in')} />
              Join as {signedIn.user.email}, signed in now
            </label>
          )}
        </fieldset>
        {mode === 'new' && (
          <>
            <label>
              Your name
              <input name="name" required maxLength={200} autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />
            </label>
            <label>
              New password (at least {MIN_PASSWORD} characters)
              <input type="password" name="password" required minLength={MIN_PASSWORD} maxLength={256} autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
            </label>
            <label>
              Repeat the new password
              <input type="password" name="repeat" required minLength={MIN_PASSWORD} maxLength={256} autoComplete="new-password" value={repeat} onChange={(e) => setRepeat(e.target.value)} />
            </label>
          </>
        )}
        {mode === 'existing' && (
          <>
            <label>
              Your account&apos;s password
              <input type="password" name="password" required maxLength={256} autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
            </label>
            <p className="notice">
              Your account has an authenticator? Then <a href="/login">sign in</a> with its password and code first, open your invitation link again and join as the signed-in account.
            </p>
          </>
        )}
        {error && (
          <p className="error" role="alert" data-testid="join-error">
            {error}
          </p>
        )}
        <button type="submit" className="button" disabled={busy}>
          {busy ? 'Joining…' : 'Join'}
        </button>
      </form>
    </section>
  );
}
