/** Badge colour per task state (dark shades: readable text contrast). */
export const STATE_COLOR: Record<string, string> = {
  queued: 'gray.9',
  running: 'blue.9',
  awaiting_approval: 'orange.9',
  in_review: 'grape.9',
  completed: 'green.9',
  failed: 'red.9',
  cancelled: 'dark.6',
};
