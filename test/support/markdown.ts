// Reading the docs' markdown tables, for the tests that hold the docs to the code.

/** The body rows of the first table in `markdown` whose header row is exactly `header` (cells compared trimmed). */
export function tableRows(markdown: string, header: string[], source = 'the markdown'): string[][] {
  const lines = markdown.split('\n');
  const cellsOf = (line: string) =>
    line
      .trim()
      .replace(/^\|/, '')
      .replace(/\|$/, '')
      .split('|')
      .map((c) => c.trim());
  const start = lines.findIndex((l) => l.trim().startsWith('|') && cellsOf(l).join('\u0000') === header.join('\u0000'));
  if (start < 0) throw new Error(`${source} has no table with header | ${header.join(' | ')} |`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.trim().startsWith('|')) break;
    const cells = cellsOf(line);
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue; // the |---|---| separator
    rows.push(cells);
  }
  return rows;
}
