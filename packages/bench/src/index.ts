export { type BenchOptions, parseBenchArgs, SEED_FILE_BYTES, SEED_MBPS } from './args.js';
export {
  type BenchResult,
  type DirectionSummary,
  type ImpairedDirection,
  type LoopbackConfig,
  RESULT_SCHEMA,
  runBench,
  type ScenarioResult,
  type TargetCheck,
} from './bench.js';
export { renderSvg } from './chart.js';
export { type CryptoResult, type CryptoRow, runCryptoBench } from './crypto-bench.js';
export {
  ImpairmentProxy,
  type ImpairmentProxyOptions,
  type ImpairmentProxyStats,
  type ProxyEndpoint,
} from './proxy.js';
export { renderMarkdown } from './report.js';
export { proxyArgsFor, SCENARIOS, type Scenario } from './scenarios.js';
export { type Summary, summarize } from './summary.js';
