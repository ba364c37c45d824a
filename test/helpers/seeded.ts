/**
 * mulberry32: a small seeded generator of numbers in [0, 1), so a test's random choices (kill times,
 * fault loads, passwords, garbage tokens) are the same on every run and a failure can be replayed.
 */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), state | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}
