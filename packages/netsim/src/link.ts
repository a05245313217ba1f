import { Rng } from './rng.js';

/** Two-state (Gilbert-Elliott) burst loss, evaluated per datagram. */
export interface BurstLoss {
  /** Probability of moving from the good to the bad state, per datagram. */
  enterBad: number;
  /** Probability of moving from the bad back to the good state, per datagram. */
  leaveBad: number;
  /** Loss probability while in the bad state (the good state uses LinkConfig.loss). */
  lossInBad: number;
}

/** Half-open interval [fromMs, toMs) of the link's clock during which every datagram is dropped. */
export interface Blackout {
  fromMs: number;
  toMs: number;
}

/** One direction of a link. Every field is optional; `{}` is an ideal link (no delay, no loss). */
export interface LinkConfig {
  /** Bottleneck rate; undefined = infinite (no serialization delay, no queue). */
  rateBitsPerSecond?: number;
  /** Tail-drop bound of the bottleneck queue, in bytes (default 256 KiB). Only with a rate. */
  queueBytes?: number;
  /** Bytes added to each datagram for rate and queue accounting (e.g. 28 for IPv4 + UDP headers). */
  overheadBytes?: number;
  /** One-way propagation delay. */
  delayMs?: number;
  /** Delay varies within delayMs +- jitterMs (bell-shaped); never reorders by itself. */
  jitterMs?: number;
  /** Independent random loss probability (0..1); in burst mode, the good state's loss. */
  loss?: number;
  burstLoss?: BurstLoss;
  /** Probability that a datagram is delivered twice. */
  duplicate?: number;
  /** Probability that a datagram is held back by reorderDelayMs, letting later ones overtake it. */
  reorder?: number;
  /** Extra hold of a reordered datagram (default max(5, delayMs + jitterMs)). */
  reorderDelayMs?: number;
  /** Probability that a delivered copy has one random bit flipped. */
  corrupt?: number;
  /** Datagrams longer than this (UDP payload bytes) are dropped. */
  mtu?: number;
  /** Intervals of the link's clock in which everything offered is dropped. */
  blackouts?: readonly Blackout[];
}

/** A datagram leaving the link at atMs (same clock as offer's nowMs). */
export interface Delivery {
  atMs: number;
  datagram: Buffer;
}

export interface LinkDrops {
  loss: number;
  queue: number;
  mtu: number;
  blackout: number;
}

/** Plain-object form of LinkStats (what toJSON returns). */
export interface LinkStatsSnapshot {
  offered: number;
  /** Deliveries scheduled, duplicates included. */
  delivered: number;
  dropped: LinkDrops;
  duplicated: number;
  reordered: number;
  corrupted: number;
  bytesOffered: number;
  bytesDelivered: number;
  /** Largest bottleneck backlog seen, in bytes (overhead included). */
  peakQueueBytes: number;
}

export class LinkStats implements LinkStatsSnapshot {
  offered = 0;
  delivered = 0;
  readonly dropped: LinkDrops = { loss: 0, queue: 0, mtu: 0, blackout: 0 };
  duplicated = 0;
  reordered = 0;
  corrupted = 0;
  bytesOffered = 0;
  bytesDelivered = 0;
  peakQueueBytes = 0;

  get droppedTotal(): number {
    const d = this.dropped;
    return d.loss + d.queue + d.mtu + d.blackout;
  }

  toJSON(): LinkStatsSnapshot {
    return {
      offered: this.offered,
      delivered: this.delivered,
      dropped: { ...this.dropped },
      duplicated: this.duplicated,
      reordered: this.reordered,
      corrupted: this.corrupted,
      bytesOffered: this.bytesOffered,
      bytesDelivered: this.bytesDelivered,
      peakQueueBytes: this.peakQueueBytes,
    };
  }
}

export const DEFAULT_QUEUE_BYTES = 256 * 1024;
export const MIN_REORDER_DELAY_MS = 5;

const EMPTY: readonly Delivery[] = Object.freeze([]);

function checkProbability(name: string, p: number | undefined): void {
  if (p !== undefined && !(p >= 0 && p <= 1))
    throw new RangeError(`LinkConfig.${name} must be in [0, 1], got ${p}`);
}

function checkNonNegative(name: string, x: number | undefined): void {
  if (x !== undefined && !(x >= 0 && Number.isFinite(x))) {
    throw new RangeError(`LinkConfig.${name} must be a finite number >= 0, got ${x}`);
  }
}

/** Throws RangeError naming the first invalid field. */
export function validateLinkConfig(config: LinkConfig): void {
  const rate = config.rateBitsPerSecond;
  if (rate !== undefined && !(rate > 0)) {
    throw new RangeError(`LinkConfig.rateBitsPerSecond must be > 0 (or undefined for infinite), got ${rate}`);
  }
  checkNonNegative('queueBytes', config.queueBytes);
  checkNonNegative('overheadBytes', config.overheadBytes);
  checkNonNegative('delayMs', config.delayMs);
  checkNonNegative('jitterMs', config.jitterMs);
  checkNonNegative('reorderDelayMs', config.reorderDelayMs);
  checkNonNegative('mtu', config.mtu);
  checkProbability('loss', config.loss);
  checkProbability('duplicate', config.duplicate);
  checkProbability('reorder', config.reorder);
  checkProbability('corrupt', config.corrupt);
  if (config.burstLoss) {
    checkProbability('burstLoss.enterBad', config.burstLoss.enterBad);
    checkProbability('burstLoss.leaveBad', config.burstLoss.leaveBad);
    checkProbability('burstLoss.lossInBad', config.burstLoss.lossInBad);
  }
  for (const b of config.blackouts ?? []) {
    if (!(b.toMs >= b.fromMs))
      throw new RangeError(`LinkConfig.blackouts: toMs < fromMs in ${JSON.stringify(b)}`);
  }
}

/**
 * One direction of a link, as a pure model: offer a datagram with the current time and get back
 * when (and whether, how often, how damaged) it comes out. No clock, timers or sockets here, so the
 * same model drives both the simulated network (virtual time) and the UDP impairment proxy (real
 * time). Times must be offered in non-decreasing order.
 *
 * Order of effects, as in netem: MTU, blackout and random/burst loss act on entry (a lost datagram
 * never occupies the bottleneck); then the tail-drop queue and serialization at the rate; then
 * propagation delay with jitter (kept in FIFO order); then reordering, corruption and duplication.
 */
export class LinkModel {
  readonly stats = new LinkStats();
  private cfg: LinkConfig;
  private readonly rng: Rng;
  /** When the bottleneck finishes serializing everything admitted so far. */
  private busyUntilMs = Number.NEGATIVE_INFINITY;
  /** Latest delivery time of a datagram not held back: FIFO floor for jittered ones. */
  private lastInOrderAtMs = Number.NEGATIVE_INFINITY;
  private inBadState = false;

  constructor(config: LinkConfig = {}, rng: Rng = new Rng(0)) {
    validateLinkConfig(config);
    this.cfg = { ...config };
    this.rng = rng;
  }

  get config(): Readonly<LinkConfig> {
    return this.cfg;
  }

  /** Changes the link's conditions from now on (datagrams already offered keep their fate). */
  reconfigure(patch: Partial<LinkConfig>): void {
    const next = { ...this.cfg, ...patch };
    validateLinkConfig(next);
    this.cfg = next;
  }

  /** Bytes waiting at the bottleneck (including the one being serialized) at nowMs. */
  queuedBytes(nowMs: number): number {
    const rate = this.cfg.rateBitsPerSecond;
    if (rate === undefined || this.busyUntilMs <= nowMs) return 0;
    return ((this.busyUntilMs - nowMs) * rate) / 8000;
  }

  /**
   * Offers one datagram entering the link at nowMs. Returns 0..2 deliveries in order of delivery
   * time. The original buffer is delivered as is (the caller must not reuse it); corrupted and
   * duplicated deliveries are copies.
   */
  offer(datagram: Buffer, nowMs: number): readonly Delivery[] {
    const cfg = this.cfg;
    const stats = this.stats;
    const length = datagram.length;
    stats.offered++;
    stats.bytesOffered += length;

    if (cfg.mtu !== undefined && length > cfg.mtu) {
      stats.dropped.mtu++;
      return EMPTY;
    }
    if (cfg.blackouts !== undefined && inBlackout(cfg.blackouts, nowMs)) {
      stats.dropped.blackout++;
      return EMPTY;
    }
    if (this.isLost()) {
      stats.dropped.loss++;
      return EMPTY;
    }

    let departureMs = nowMs;
    const rate = cfg.rateBitsPerSecond;
    if (rate !== undefined) {
      const wireBytes = length + (cfg.overheadBytes ?? 0);
      const queued = this.queuedBytes(nowMs);
      // An empty queue always takes the datagram being serialized, whatever its size.
      if (queued > 0 && queued + wireBytes > (cfg.queueBytes ?? DEFAULT_QUEUE_BYTES)) {
        stats.dropped.queue++;
        return EMPTY;
      }
      departureMs = Math.max(nowMs, this.busyUntilMs) + (wireBytes * 8000) / rate;
      this.busyUntilMs = departureMs;
      if (queued + wireBytes > stats.peakQueueBytes) stats.peakQueueBytes = queued + wireBytes;
    }

    const delayMs = cfg.delayMs ?? 0;
    const jitterMs = cfg.jitterMs ?? 0;
    let atMs = departureMs + Math.max(0, delayMs + this.rng.jitter(jitterMs));
    if (cfg.reorder !== undefined && this.rng.chance(cfg.reorder)) {
      atMs += cfg.reorderDelayMs ?? Math.max(MIN_REORDER_DELAY_MS, delayMs + jitterMs);
      stats.reordered++;
    } else {
      if (atMs < this.lastInOrderAtMs) atMs = this.lastInOrderAtMs;
      this.lastInOrderAtMs = atMs;
    }

    const duplicated = cfg.duplicate !== undefined && this.rng.chance(cfg.duplicate);
    const first: Delivery = { atMs, datagram: this.maybeCorrupt(datagram, false) };
    stats.delivered++;
    stats.bytesDelivered += length;
    if (!duplicated) return [first];
    stats.duplicated++;
    stats.delivered++;
    stats.bytesDelivered += length;
    return [first, { atMs, datagram: this.maybeCorrupt(datagram, true) }];
  }

  private isLost(): boolean {
    const cfg = this.cfg;
    const burst = cfg.burstLoss;
    if (burst !== undefined) {
      this.inBadState = this.inBadState ? !this.rng.chance(burst.leaveBad) : this.rng.chance(burst.enterBad);
      if (this.inBadState) return this.rng.chance(burst.lossInBad);
    }
    return cfg.loss !== undefined && this.rng.chance(cfg.loss);
  }

  private maybeCorrupt(datagram: Buffer, copy: boolean): Buffer {
    const p = this.cfg.corrupt;
    if (p === undefined || datagram.length === 0 || !this.rng.chance(p)) {
      return copy ? Buffer.from(datagram) : datagram;
    }
    const damaged = Buffer.from(datagram);
    const index = this.rng.int(damaged.length);
    damaged[index] = (damaged[index] ?? 0) ^ (1 << this.rng.int(8));
    this.stats.corrupted++;
    return damaged;
  }
}

function inBlackout(blackouts: readonly Blackout[], nowMs: number): boolean {
  for (const b of blackouts) if (nowMs >= b.fromMs && nowMs < b.toMs) return true;
  return false;
}
