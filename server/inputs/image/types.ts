/** An 8-bit RGB image, row-major, channels interleaved (HWC): what decoding produces. */
export interface RgbImage {
  width: number;
  height: number;
  /** width × height × 3 bytes. */
  data: Uint8Array;
}
