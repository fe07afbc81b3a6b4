import { createTheme } from '@mantine/core';

/** System fonts only: the console never fetches a font (it builds and runs offline). */
export const theme = createTheme({
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif",
  fontFamilyMonospace: "ui-monospace, 'SFMono-Regular', Menlo, Consolas, 'Liberation Mono', monospace",
  primaryColor: 'indigo',
  // Darker shades than Mantine's defaults so text on light backgrounds passes WCAG AA contrast.
  primaryShade: 8,
  defaultRadius: 'sm',
});
