// Protobuf bytes built field by field, for requests the generated encoders cannot express
// (Timestamps out of range, nanos out of range, truncated fields).
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

/** A google.protobuf.Timestamp or Duration on the wire: seconds and nanos as fields 1 and 2. */
export const secondsNanos = (seconds: bigint | number, nanos = 0): Uint8Array =>
  new BinaryWriter().tag(1, WireType.Varint).int64(seconds).tag(2, WireType.Varint).int32(nanos).finish();

/** A message of length-delimited fields (strings or nested messages), in the order given. */
export function message(...fields: Array<[number, string | Uint8Array]>): Buffer {
  const w = new BinaryWriter();
  for (const [no, value] of fields) {
    w.tag(no, WireType.LengthDelimited);
    if (typeof value === 'string') w.string(value);
    else w.bytes(value);
  }
  return Buffer.from(w.finish());
}
