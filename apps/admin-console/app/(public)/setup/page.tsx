'use client';

import { useRouter } from 'next/navigation';
import { useEffect, useState, type FormEvent } from 'react';
import { completeSetup, getSetupStatus, problemMessage } from '@/lib/api';

/** First run: the one-time token printed by the API at its first start creates the first org and its owner. */
export default function SetupPage() {
  const router = useRouter();
  const [done, setDone] = useState<boolean | null>(null);
  const [form, setForm] = useState({ setupToken: '', orgName: '', slug: '', email: '', name: '', password: '' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void getSetupStatus().then((res) => setDone(res.ok ? res.data.completed : null));
  }, []);

  const set = (key: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm({ ...form, [key]: e.target.value });

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const res = await completeSetup({
      setupToken: form.setupToken.trim(),
      org: { name: form.orgName.trim(), slug: form.slug.trim() },
      owner: { email: form.email.trim(), name: form.name.trim(), password: form.password },
    });
    setBusy(false);
    if (res.ok) router.replace('/login');
    else setError(problemMessage(res.problem));
  }

  if (done) {
    return (
      <section className="card narrow">
        <h1>Setup is done</h1>
        <p>
          This Steward already has an org. <a href="/login">Sign in</a>.
        </p>
      </section>
    );
  }

  return (
    <section className="card narrow">
      <h1>First-run setup</h1>
      <p>Paste the one-time setup token the API printed at its first start, then create your org and its owner.</p>
      <form onSubmit={onSubmit} className="form">
        <label>
          Setup token
          <input name="setupToken" required autoComplete="off" value={form.setupToken} onChange={set('setupToken')} />
        </label>
        <label>
          Organisation name
          <input name="orgName" required maxLength={200} value={form.orgName} onChange={set('orgName')} />
        </label>
        <label>
          Short name (lower-case, digits, "-")
          <input name="slug" required pattern="[a-z0-9][a-z0-9-]*[a-z0-9]" maxLength={63} value={form.slug} onChange={set('slug')} />
        </label>
        <label>
          Your email
          <input type="email" name="email" required autoComplete="username" value={form.email} onChange={set('email')} />
        </label>
        <label>
          Your name
          <input name="name" required maxLength={200} value={form.name} onChange={set('name')} />
        </label>
        <label>
          Password (at least 12 characters)
          <input type="password" name="password" required minLength={12} autoComplete="new-password" value={form.password} onChange={set('password')} />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create org and owner'}
        </button>
      </form>
    </section>
  );
}
