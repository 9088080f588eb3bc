import { DomainError } from '../../../src/domain/errors';
import { decodeStatusDetails } from '../../../src/client/statusDetails';
import { clipBytes, toStatus } from '../../../src/transport/errors';

/** Errors may quote the request; what they send back is bounded whatever the request was. */
describe('error size bounds', () => {
  it('clipBytes cuts on a character boundary and marks the cut', () => {
    expect(clipBytes('short', 10)).toBe('short');
    const cut = clipBytes('😀'.repeat(100), 20); // 4 bytes each
    expect(cut).toBe(`${'😀'.repeat(4)}…`);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(20);
    expect(cut).not.toContain('\ufffd');
  });

  it('a validation error quoting 140 KB of input becomes a status of a few KB', () => {
    const huge = '𝄞'.repeat(35_000); // 140 KB of 4-byte characters
    const err = new DomainError(
      'INVALID_UPDATE_MASK',
      `invalid request: update_mask: "${huge}" cannot be updated`,
      Array.from({ length: 50 }, () => ({
        field: `update_mask.${huge}`,
        reason: 'INVALID_UPDATE_MASK' as const,
        description: `"${huge}" cannot be updated`,
      })),
      { path: huge },
    );
    const s = toStatus(err);
    const bin = s.metadata.get('grpc-status-details-bin')[0] as Buffer;
    expect(bin.length).toBeLessThan(8_000);
    expect(encodeURI(s.details).length).toBeLessThan(4_000);
    const d = decodeStatusDetails(s);
    expect(d.errorInfo?.reason).toBe('INVALID_UPDATE_MASK');
    expect(d.badRequest?.fieldViolations).toHaveLength(10);
    expect(d.badRequest!.fieldViolations[0].description.endsWith('…')).toBe(true);
  });
});
