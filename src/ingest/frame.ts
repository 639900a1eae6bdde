/** A decoded video frame. `data` may be a view into a larger buffer: never keep it past the frame's turn. */
export interface RgbaFrame {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

export interface Frame extends RgbaFrame {
  /** Media time of the frame in milliseconds from the start of the stream. */
  readonly ts: number;
  /** Index of the frame in the decoded stream (before sampling). */
  readonly index: number;
  /** performance.now() when the frame left the decoder. */
  readonly arrivedAt: number;
}
