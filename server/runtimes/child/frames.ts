/**
 * The wire format between ViT Lens and the runtime processes it starts (the user's Python running
 * vitlens_torch.py, the onnxruntime host for the CUDA EP): a 4-byte little-endian length, a JSON
 * header, then the raw bytes of each blob the header lists (`blobs`: their byte lengths). Tensors
 * cross as plain little-endian float32 bytes (float64 for a PyTorch program of that dtype), never
 * as a pickle or any other executable format.
 */

export interface Frame {
  header: Record<string, unknown>;
  blobs: Buffer[];
}

/** Encodes one frame: the header gets the blobs' byte lengths. */
export function encodeFrame(header: Record<string, unknown>, blobs: readonly ArrayBufferView[] = []): Buffer {
  const json = Buffer.from(JSON.stringify({ ...header, blobs: blobs.map((b) => b.byteLength) }), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([length, json, ...blobs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]);
}

/** Splits a byte stream into frames as the bytes arrive. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: Frame[] = [];
    for (;;) {
      if (this.pending.length < 4) break;
      const headerLength = this.pending.readUInt32LE(0);
      if (this.pending.length < 4 + headerLength) break;
      const header = JSON.parse(this.pending.subarray(4, 4 + headerLength).toString('utf8')) as Record<string, unknown>;
      const sizes = (header.blobs as number[] | undefined) ?? [];
      const total = 4 + headerLength + sizes.reduce((a, b) => a + b, 0);
      if (this.pending.length < total) break;
      let offset = 4 + headerLength;
      const blobs = sizes.map((n) => {
        const blob = Buffer.from(this.pending.subarray(offset, offset + n));
        offset += n;
        return blob;
      });
      frames.push({ header, blobs });
      this.pending = this.pending.subarray(total);
    }
    return frames;
  }
}

/** A blob as float32 values: a copy, since a frame's blob may be an unaligned slice of a larger buffer. */
export function float32Of(blob: Buffer): Float32Array {
  return new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
}

/** A blob as float64 values (a copy, for the same reason). */
export function float64Of(blob: Buffer): Float64Array {
  return new Float64Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
}
