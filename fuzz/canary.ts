/**
 * A planted bug that the smoke run must find before it trusts the targets:
 * "FUZZ" as the first bytes throws a TypeError, reachable only through the
 * coverage and comparison feedback of Jazzer.js's instrumentation. If the
 * fuzzer stops working (no instrumentation, a broken addon, findings not
 * reported), this fails the smoke run instead of every target passing.
 */
export async function fuzz(data: Buffer): Promise<void> {
  await Promise.resolve(); // async, like the socket and crypto targets
  if (data[0] === 0x46 && data[1] === 0x55 && data[2] === 0x5a && data[3] === 0x5a) throw new TypeError('the canary was found');
}
