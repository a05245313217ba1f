/**
 * @ferry/transport: reliable, congestion-controlled, encrypted sessions over UDP. A sans-I/O core
 * (Connection, ClientHandshake, ServerEndpoint) driven with explicit time, a Node adapter (connect,
 * UdpServer); its tests run the core on `@ferry/netsim`'s simulated network.
 */
export { BbrController, type CongestionConfig, type CongestionState } from './core/congestion.js';
export { Connection, type ConnectionEvent, type ConnectionOptions } from './core/connection.js';
export {
  type EndpointEvent,
  type PeerAddressing,
  ServerEndpoint,
  type ServerKey,
  type ServerSession,
  STRING_PEERS,
} from './core/endpoint.js';
export {
  type Access,
  ClientHandshake,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_RECEIVE_WINDOW,
  type SessionParameters,
} from './core/handshake.js';
export { RttEstimator } from './core/rtt.js';
export { ConnectionStats, DROP_REASONS, type DropReason } from './core/stats.js';
export type { BlockRange } from './core/transfers.js';
export { type Datagram, datagramLength } from './core/wire.js';
export type { InterfaceMtu } from './interface-mtu.js';
export {
  type BlockSink,
  type BlockSource,
  Session,
  type SessionClosed,
  type SessionDriver,
} from './session.js';
export {
  ClientSession,
  type ConnectOptions,
  connect,
  formatPeer,
  type ListenOptions,
  SOCKET_BUFFER_BYTES,
  type TransportTuning,
  type UdpPeer,
  UdpServer,
} from './udp.js';
