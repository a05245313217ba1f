import { performance } from 'node:perf_hooks';

/**
 * Runs `work` soon (setImmediate) or at a deadline (setTimeout); never more than one of each pending.
 * `work` returns when it wants to run next (Infinity: only when kicked).
 *
 * A deadline does not run the work from the timer itself: it kicks, so the work runs in the same turn
 * of the event loop but after its I/O phase. A process that was descheduled past a deadline (a busy
 * machine) then first reads the datagrams that arrived meanwhile: an acknowledgement waiting in the
 * socket is seen before a retransmission timeout could fire for want of it (Node runs due timers
 * before it polls for I/O).
 */
export class Pump {
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;

  constructor(private readonly work: () => number) {}

  kick(): void {
    if (this.immediate !== undefined || this.stopped) return;
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.run();
    });
  }

  private run(): void {
    if (this.stopped) return;
    const next = this.work();
    this.arm(next);
  }

  private arm(at: number): void {
    if (this.stopped) return;
    if (!Number.isFinite(at)) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    const delay = at - performance.now();
    if (delay <= 0) {
      this.kick();
      return;
    }
    if (this.timer !== undefined && Math.abs(this.timerAt - at) < 0.5) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        this.kick();
      },
      Math.max(1, Math.ceil(delay)),
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}
