import type { Ctx, Options } from '../command';
import { asJson } from '../output';

/** The flags of a listing: page size, where to start, or every page. */
export const PAGING: Options = {
  limit: { type: 'string' },
  'page-token': { type: 'string' },
  all: { type: 'boolean' },
};

export interface Listing<T> {
  /** One page from `pageToken` ('' = the first) and the token of the page after it ('' at the end). */
  page(pageToken: string): Promise<{ items: T[]; next: string }>;
  json(items: T[], nextPageToken: string): unknown;
  table(items: T[]): string;
  /** For the hint to the next page: "more keys: keyctl list --page-token …". */
  what: string;
  command: string;
}

/**
 * Reads one page from --page-token (the first when absent), or with --all that page and every one
 * after it; prints the response as JSON, or the table and how to ask for the page after it.
 */
export async function runListing<T>(c: Ctx, listing: Listing<T>): Promise<void> {
  const items: T[] = [];
  let next = typeof c.values['page-token'] === 'string' ? c.values['page-token'] : '';
  do {
    const page = await listing.page(next);
    items.push(...page.items);
    next = page.next;
  } while (c.values.all === true && next);
  if (c.json) {
    c.io.out(asJson(listing.json(items, next)));
  } else {
    c.io.out(listing.table(items));
    if (next) c.io.out(`\nmore ${listing.what}: keyctl ${listing.command} --page-token ${next}   (or --all)\n`);
  }
}
