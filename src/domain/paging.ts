import { DomainError } from './errors';
import { decodePageToken, encodePageToken, type PagePosition } from './pageToken';

/**
 * AIP-158 pages over (time, id), newest first. `scope` binds a token to the organization and
 * the filters it was issued for; a token used with others is INVALID_ARGUMENT.
 */
export function positionFromToken(token: string, scope: string, key: Buffer): PagePosition | undefined {
  if (token === '') return undefined;
  const pos = decodePageToken(token, scope, key);
  if (!pos) {
    throw new DomainError('INVALID_PAGE_TOKEN', 'page_token is invalid, expired, or was issued for other filters', [
      { field: 'page_token', reason: 'INVALID_PAGE_TOKEN', description: 'not a token returned by this list for this request' },
    ]);
  }
  return pos;
}

/** Cuts the one-extra row fetched past the page and makes the next token from the last row kept. */
export function toPage<T>(rows: T[], pageSize: number, positionOf: (row: T) => PagePosition, scope: string, key: Buffer) {
  const items = rows.slice(0, pageSize);
  const nextPageToken = rows.length > pageSize ? encodePageToken(positionOf(items[items.length - 1]), scope, key) : '';
  return { items, nextPageToken };
}
