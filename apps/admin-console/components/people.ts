'use client';

import { useEffect, useState } from 'react';
import { api, ok } from '@/lib/client';
import { useSession } from './session';

/** userId → email for the org's members (empty when the caller may not list members). */
export function useMemberNames(): (id: string | null | undefined) => string {
  const { can, session } = useSession();
  const [names, setNames] = useState<Record<string, string>>({});
  const allowed = can('read:Member');
  useEffect(() => {
    if (!allowed) return;
    ok(api.GET('/v1/members', { params: { query: { limit: 200 } } })).then(
      (page) => setNames(Object.fromEntries(page.items.map((m) => [m.userId, m.email]))),
      () => undefined,
    );
  }, [allowed]);
  return (id) => (!id ? '—' : id === session.user.id ? `${session.user.email} (you)` : (names[id] ?? id.slice(0, 8)));
}
