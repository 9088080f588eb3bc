/** Usage is counted per UTC day; days are labelled "YYYY-MM-DD" everywhere (storage, GetKeyUsage, retention). */
export const DAY_MS = 86_400_000;

/** The UTC day of `at`, as "YYYY-MM-DD". */
export function utcDay(at: Date | number): string {
  return new Date(at).toISOString().slice(0, 10);
}
