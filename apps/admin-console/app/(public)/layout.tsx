import type { ReactNode } from 'react';
import { TopBar } from '@/components/health';

/** Pages before sign-in (sign in, first-run setup): the plain top bar, no navigation. */
export default function PublicLayout({ children }: { children: ReactNode }) {
  return (
    <>
      <TopBar />
      <main className="content">{children}</main>
    </>
  );
}
