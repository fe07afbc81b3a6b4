'use client';

import { MantineProvider } from '@mantine/core';
import type { ReactNode } from 'react';
import { HealthProvider } from './health';
import { theme } from './theme';

/** Client-side providers for every page (the theme holds component defaults, so it lives on the client). */
export function Providers({ children }: { children: ReactNode }) {
  return (
    <MantineProvider theme={theme} defaultColorScheme="light">
      <HealthProvider>{children}</HealthProvider>
    </MantineProvider>
  );
}
