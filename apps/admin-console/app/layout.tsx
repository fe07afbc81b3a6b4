import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { HealthProvider, TopBar } from '@/components/health';
import './globals.css';

export const metadata: Metadata = {
  title: 'Steward console',
  description: 'Governance control plane for AI agents',
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <HealthProvider>
          <TopBar />
          <main className="content">{children}</main>
        </HealthProvider>
      </body>
    </html>
  );
}
