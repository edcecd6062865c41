/**
 * A preload (`node --import`) that makes the process's clock wrong by QUILT_TEST_CLOCK_OFFSET_MS
 * milliseconds, as on a laptop whose clock has drifted: Date.now() and new Date() are off, timers
 * and performance.now() are not. The fault campaign starts the server with it to meet S3's
 * RequestTimeTooSkewed (s3rver checks request times as S3 does).
 */
const offset = Number(process.env.QUILT_TEST_CLOCK_OFFSET_MS ?? 0);
const RealDate = globalThis.Date;
class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...args);
  }
  static now() {
    return RealDate.now() + offset;
  }
}
globalThis.Date = SkewedDate;
