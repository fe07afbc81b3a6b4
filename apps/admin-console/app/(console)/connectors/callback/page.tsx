'use client';

import { Alert, Anchor, Loader } from '@mantine/core';
import Link from 'next/link';
import { useEffect, useState } from 'react';
import { errorText } from '@/components/ui';
import { api, ok } from '@/lib/client';

/** Where the provider sends the browser back after OAuth consent: hands code and state to the API. */
export default function OAuthCallbackPage() {
  const [state, setState] = useState<{ kind: 'busy' } | { kind: 'done' } | { kind: 'error'; message: string }>({ kind: 'busy' });
  useEffect(() => {
    const q = new URLSearchParams(window.location.search);
    const code = q.get('code');
    const st = q.get('state');
    if (!code || !st) {
      setState({ kind: 'error', message: q.get('error_description') ?? q.get('error') ?? 'The provider sent no authorisation code.' });
      return;
    }
    ok(api.POST('/v1/oauth/callback', { body: { code, state: st } })).then(
      () => setState({ kind: 'done' }),
      (e: unknown) => setState({ kind: 'error', message: errorText(e) }),
    );
  }, []);
  return (
    <>
      <h1 className="sr-only">Connecting</h1>
      {state.kind === 'busy' && <Loader role="status" aria-label="Connecting" />}
      {state.kind === 'done' && (
        <Alert color="green" title="Connected">
          The credential is stored (encrypted). <Anchor component={Link} href="/connectors">Back to connectors</Anchor>
        </Alert>
      )}
      {state.kind === 'error' && (
        <Alert color="red" title="Could not connect" role="alert">
          {state.message} <Anchor component={Link} href="/connectors">Back to connectors</Anchor>
        </Alert>
      )}
    </>
  );
}
