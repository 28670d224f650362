/** Where something is in a config document: half-open character offsets [start, end) into its text. */
export interface Span {
  start: number;
  end: number;
}
