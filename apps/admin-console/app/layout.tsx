import '@mantine/core/styles.css';
import './globals.css';
import { ColorSchemeScript, MantineProvider, mantineHtmlProps } from '@mantine/core';
import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { HealthProvider } from '@/components/health';
import { theme } from '@/components/theme';

export const metadata: Metadata = {
  title: 'Steward console',
  description: 'Governance control plane for AI agents',
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en" {...mantineHtmlProps}>
      <head>
        <ColorSchemeScript defaultColorScheme="light" />
      </head>
      <body>
        <MantineProvider theme={theme} defaultColorScheme="light">
          <HealthProvider>{children}</HealthProvider>
        </MantineProvider>
      </body>
    </html>
  );
}
