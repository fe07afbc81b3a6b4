'use client';

import { createTheme, Drawer, Modal, type MantineColorsTuple } from '@mantine/core';

/**
 * Mantine's palette with shades 6–9 darkened until text in them reads at WCAG AA (≥ 5:1 on white,
 * ≥ 4.7:1 on the colour's own light tint), so badges, alerts and dimmed text pass axe's
 * color-contrast rule. Shades 0–5 (backgrounds) are Mantine's own.
 */
const colors: Record<string, MantineColorsTuple> = {
  green: ['#ebfbee', '#d3f9d8', '#b2f2bb', '#8ce99a', '#69db7c', '#51cf66', '#297937', '#257633', '#237532', '#237032'],
  orange: ['#fff4e6', '#ffe8cc', '#ffd8a8', '#ffc078', '#ffa94d', '#ff922b', '#a0500b', '#ac4807', '#ab420a', '#b13b0b'],
  yellow: ['#fff9db', '#fff3bf', '#ffec99', '#ffe066', '#ffd43b', '#fcc419', '#8f6405', '#935f00', '#985800', '#a25300'],
  red: ['#fff5f5', '#ffe3e3', '#ffc9c9', '#ffa8a8', '#ff8787', '#ff6b6b', '#af3a3a', '#ba3030', '#b62929', '#b52626'],
  blue: ['#e7f5ff', '#d0ebff', '#a5d8ff', '#74c0fc', '#4dabf7', '#339af0', '#1a66aa', '#1867ae', '#1766af', '#1864ab'],
  indigo: ['#edf2ff', '#dbe4ff', '#bac8ff', '#91a7ff', '#748ffc', '#5c7cfa', '#3e5ac8', '#3c59d4', '#3856d0', '#364fc7'],
  grape: ['#f8f0fc', '#f3d9fa', '#eebefa', '#e599f7', '#da77f2', '#cc5de8', '#933aaa', '#9535ac', '#9433ac', '#862e9c'],
  teal: ['#e6fcf5', '#c3fae8', '#96f2d7', '#63e6be', '#38d9a9', '#20c997', '#0a7555', '#0a7554', '#097151', '#087352'],
  cyan: ['#e3fafc', '#c5f6fa', '#99e9f2', '#66d9e8', '#3bc9db', '#22b8cf', '#0d717e', '#0a707f', '#0a6c7c', '#0a6c7e'],
  gray: ['#f8f9fa', '#f1f3f5', '#e9ecef', '#dee2e6', '#ced4da', '#adb5bd', '#63696f', '#495057', '#343a40', '#212529'],
  violet: ['#f3f0ff', '#e5dbff', '#d0bfff', '#b197fc', '#9775fa', '#845ef7', '#6d48db', '#6a44dc', '#6741d9', '#5f3dc4'],
  pink: ['#fff0f6', '#ffdeeb', '#fcc2d7', '#faa2c1', '#f783ac', '#f06595', '#b33964', '#b72c5d', '#b82357', '#a61e4d'],
  lime: ['#f4fce3', '#e9fac8', '#d8f5a2', '#c0eb75', '#a9e34b', '#94d82d', '#4e7814', '#4a750d', '#43700a', '#47730a'],
};

/** System fonts only: the console never fetches a font (it builds and runs offline). */
export const theme = createTheme({
  fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif",
  fontFamilyMonospace: "ui-monospace, 'SFMono-Regular', Menlo, Consolas, 'Liberation Mono', monospace",
  colors,
  primaryColor: 'indigo',
  primaryShade: 8,
  defaultRadius: 'sm',
  // Every dialog's close button has a name screen readers can announce.
  components: {
    Modal: Modal.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Close' } } }),
    Drawer: Drawer.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Close' } } }),
  },
});
