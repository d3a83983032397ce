// The demo's live summary: one row per route. Pure: it only formats.
import type { RouteSnapshot } from './stats.ts';

export type SummaryRow = RouteSnapshot & { readonly produced?: number };

const COLUMNS = [
  'route',
  'produced',
  'processed',
  'duplicates',
  'stale',
  'dead-lettered',
  'lag',
  'records/s',
  'p99 e2e',
] as const;

const cell = (row: SummaryRow, column: (typeof COLUMNS)[number]): string => {
  switch (column) {
    case 'route':
      return row.route;
    case 'produced':
      return row.produced === undefined ? '-' : String(row.produced);
    case 'processed':
      return String(row.processed);
    case 'duplicates':
      return String(row.duplicates);
    case 'stale':
      return row.custom.StaleEventsIgnored === undefined ? '-' : String(row.custom.StaleEventsIgnored);
    case 'dead-lettered':
      return String(row.deadLettered);
    case 'lag':
      return row.lag === undefined ? '?' : String(row.lag);
    case 'records/s':
      return row.recordsPerSec.toFixed(0);
    case 'p99 e2e':
      return row.p99LatencyMs === undefined ? '-' : `${Math.round(row.p99LatencyMs)} ms`;
  }
};

/** A fixed-width table; the first column is left-aligned, the others right-aligned. */
export const formatSummaryTable = (rows: readonly SummaryRow[]): string[] => {
  const cells = [COLUMNS.map(String), ...rows.map((row) => COLUMNS.map((c) => cell(row, c)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((r) => (r[i] as string).length)));
  return cells.map((r) =>
    r.map((text, i) => (i === 0 ? text.padEnd(widths[i] as number) : text.padStart(widths[i] as number))).join('  '),
  );
};
