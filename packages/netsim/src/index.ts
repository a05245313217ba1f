export { EventQueue, type ScheduledEvent } from './event-queue.js';
export {
  type Blackout,
  type BurstLoss,
  DEFAULT_QUEUE_BYTES,
  type Delivery,
  type LinkConfig,
  type LinkDrops,
  LinkModel,
  LinkStats,
  type LinkStatsSnapshot,
  MIN_REORDER_DELAY_MS,
  validateLinkConfig,
} from './link.js';
export {
  DEFAULT_MAX_EVENTS,
  DEFAULT_MAX_TIME_MS,
  type SimDropReason,
  type SimEndpoint,
  SimNetwork,
  type SimNetworkOptions,
  SimNetworkStats,
  type SimNetworkStatsSnapshot,
  type SimRunOptions,
  type SimRunResult,
  type SimTimer,
  type SimTraceEvent,
} from './network.js';
export { Rng, type Seed } from './rng.js';
