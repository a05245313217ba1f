import { parseArgs } from 'node:util';
import { PEER_TOOLS, type PeerTool } from './peers/tools.js';
import { parseSize } from './proxy-cli.js';
import { SCENARIOS } from './scenarios.js';

/** The seed's file: "56 MB" = 56 MiB. */
export const SEED_FILE_BYTES = 58_720_256;
/** The seed's published figure, MB/s (10^6 bytes per second). */
export const SEED_MBPS = 1.86;

/** ferry must move a file at least this many times as fast as each peer tool (the issue's target). */
export const PEER_TARGET_RATIO = 1.5;
/** ferry must move the tree of 10,000 small files at least this many times as fast as scp -r and rsync -a. */
export const TREE_TARGET_RATIO = 2;
/** A tree of 20 large files moves within this fraction of ferry's single-file speed for the same bytes. */
export const LARGE_TREE_TARGET = 0.9;
/** Peak RSS of client and server for the tree of 10,000 files, bytes. */
export const TREE_RSS_LIMIT = 200e6;

/**
 * headline (the default): the 56 MiB put and get of ferry, scp and sftp and ferry's stop-and-wait
 * row, interleaved; full: the whole matrix; quick: the smoke test CI runs; fixed-cost: only the
 * fixed-cost row (whole `ferry stat` and 1-byte get processes; part of full).
 */
export type BenchMode = 'headline' | 'full' | 'quick' | 'fixed-cost';

export interface BenchOptions {
  mode: BenchMode;
  quick: boolean;
  /** Bytes of the loopback file (default: the seed's 56 MiB; --quick: 8 MiB). */
  size: number;
  /** Measured runs per loopback configuration and direction. */
  runs: number;
  /** Unmeasured runs before those (warm caches, JIT-free comparisons). */
  warmup: number;
  /** File size for the stop-and-wait rows (a window of one is slow by design). */
  stopAndWaitSize: number;
  /** Impairment scenarios to run, by name. */
  scenarios: string[];
  /** Runs per impairment scenario and direction. */
  impairmentRuns: number;
  skipImpairment: boolean;
  skipAlgorithms: boolean;
  skipCrypto: boolean;
  /** Peer tools run over a throwaway sshd, interleaved with ferry's runs (none: --skip-peers). */
  peers: PeerTool[];
  /** The OpenSSH daemon for the peers (default /usr/sbin/sshd). */
  sshdPath: string | undefined;
  /** Run the directory-tree rows (many small files; a few large ones). */
  trees: boolean;
  /** Runs per tree row and direction. */
  treeRuns: number;
  /**
   * The large-file row: 1 GiB put and get with ferry beside scp, the one-core seal + hash ceiling
   * measured before each ferry run, and each side's peak RSS.
   */
  memory: boolean;
  /** The busy-machine row: two CPU-bound processes beside 56 MiB transfers of ferry and scp. */
  busy: boolean;
  /** The seed's client against ferry-server --seed-compat and the seed's server (reimplemented). */
  seedCompat: boolean;
  memorySize: number;
  /** The fixed-cost row: whole `ferry stat` and 1-byte `ferry get` processes, and `node -e 0`. */
  fixedCost: boolean;
  /** The client of another build to compare the fixed cost with (its wall time / this build's). */
  baselineFerry: string | undefined;
  /** That build's server, for its client; without it the baseline client talks to this build's server. */
  baselineServer: string | undefined;
  /** Machine output (the whole result object) on stdout; the table goes to stderr. */
  json: boolean;
  /** Where the JSON goes; the SVG is written beside it with the same base name. */
  out: string | undefined;
  /** Write results/reference.json and .svg (committed on purpose) instead of a file under results/runs/. */
  saveReference: boolean;
  /** Start directory for temp files (default: the OS temp dir). */
  tmpDir: string | undefined;
  /** Keep the temp directory (files, logs, CPU profiles) for a look afterwards. */
  keep: boolean;
  /** Write a CPU profile of every client and server process into this directory. */
  cpuProf: string | undefined;
  ferryBin: string | undefined;
  serverBin: string | undefined;
  /** Re-render the table and chart of an existing result file instead of measuring. */
  render: string | undefined;
  /** Nice value for client, server and proxy (negative = ahead of other work on a shared machine). */
  priority: number | undefined;
  /**
   * 's3': instead of the headline, the 56 MiB file through a server on Ceph RGW beside the same server
   * on local disk and the AWS SDK's own upload and download to the same RGW (see s3-bench.ts).
   */
  storage: 'local' | 's3';
  help: boolean;
}

export const USAGE = `pnpm bench: ferry beside scp and sftp on the seed's 56 MiB file; with --full also its
algorithm, impairment, crypto and memory benchmarks.

Usage: node packages/bench/dist/cli.js [options]      (or: pnpm bench -- [options])

  (no option)           the headline, ~1 minute: 56 MiB put and get with ferry, scp and sftp (over a
                        throwaway sshd on 127.0.0.1, when /usr/sbin/sshd is installed) and ferry's
                        stop-and-wait row (--window 1), runs interleaved; ends with a verdict line
  --full                the whole matrix (~30 minutes): the headline plus rsync, block sizes,
                        impaired links, crypto, directory trees, the 1 GiB row, the busy-machine
                        row, the seed's client and the fixed-cost row
  --quick               smoke test: 8 MiB file, 1 run, one impairment scenario, short crypto (CI)
  --size BYTES          loopback file size (default 58720256, the seed's 56 MiB; 64MiB etc. work)
  --runs N              measured runs per configuration and direction (default 5)
  --warmup N            unmeasured runs first (default 1; --quick 0)
  --stop-and-wait-size BYTES   file for the window-of-one rows (default 4MiB)
  --scenario NAME       impairment scenario to run (repeatable; default: all with --full, none
                        otherwise). Names:
${SCENARIOS.map((s) => `                          ${s.name.padEnd(22)} ${s.description}`).join('\n')}
  --impairment-runs N   runs per scenario and direction (default 3; --quick 1)
  --skip-impairment     no impaired links
  --skip-algorithms     no window/block-size comparison
  --skip-crypto         no crypto micro-benchmark
  --skip-peers          no scp / sftp / rsync
  --sshd PATH           the OpenSSH daemon for the peers (default /usr/sbin/sshd; without it the
                        peers' rows say "not run: sshd not installed")
  --trees               directory trees (part of --full): 10,000 files of 1-8 KiB in 100 directories
                        with ferry put -r / get -r, scp -r and rsync -a; 20 files of 20 MiB with
                        ferry -r and a single file of the same bytes (--quick: smaller trees)
  --skip-trees          no directory trees in --full
  --tree-runs N         measured runs per tree row and direction (default 3; --quick 1)
  --skip-memory         no 1 GiB row in --full
  --memory              also the 1 GiB row: ferry and scp put and get, ferry against the one-core
                        seal + hash ceiling measured in the same run, peak RSS (slow; not for CI)
  --memory-size BYTES   file for --memory (default 1GiB)
  --busy                also the busy-machine row: two CPU-bound processes run beside 56 MiB puts
                        and gets of ferry and scp (interleaved, --runs each), then are killed; ferry's
                        retransmission timeouts are counted (part of --full)
  --skip-busy           leave the busy-machine row out of --full
  --seed-compat         also run the seed's client (ferry's Python test client of the seed's
                        protocol) against ferry-server --seed-compat and against a reimplementation
                        of the seed's own server, side by side (part of --full; needs python3 with
                        cryptography, else "not run")
  --skip-seed-compat    leave that comparison out of --full
  --fixed-cost          only the fixed-cost row (part of --full): whole \`ferry stat\` and \`ferry get\` of
                        a 1-byte file, spawn to exit, against one server, --runs each after --warmup,
                        with and without NODE_EXTRA_CA_CERTS, and \`node -e 0\` as the floor
  --skip-fixed-cost     leave the fixed-cost row out of --full
  --baseline-ferry PATH        the fixed-cost row also runs this client (another build's bin/ferry.js),
                               round by round with this build's: ratio this / baseline (target <= 0.50)
  --baseline-ferry-server PATH the baseline client talks to this server (its own build's) instead of
                               this build's
  --json                print the result object (JSON) on stdout; the table goes to stderr
  --out FILE            JSON result path (default: a new file in packages/bench/results/runs/, which
                        git ignores); the chart is FILE with .svg
  --save-reference      write packages/bench/results/reference.json and .svg (committed on purpose)
  --tmp DIR             where the temp directory goes (default the OS temp dir)
  --keep                keep the temp directory (files, logs)
  --cpu-prof DIR        write a .cpuprofile of every client and server process into DIR
  --priority=N          nice value (-20..19) for client, server, proxy and peer tools; a negative
                        value (root only) keeps other work on a shared machine from skewing figures
  --storage s3          instead: the file through ferry-server on a throwaway Ceph RGW (scripts/ceph;
                        FERRY_CEPH=DIR reuses a running one), beside ferry-server on local disk and
                        the AWS SDK's own multipart upload and download to the same RGW, runs
                        interleaved (default 3); with --memory also the server's peak RSS in a 1 GiB put
  --render FILE.json    print the table of an earlier result and rewrite its chart (FILE.svg); no runs
  --ferry PATH          the ferry bin (default: @ferry/client-cli's bin/ferry.js)
  --ferry-server PATH   the ferry-server bin (default: @ferry/server-cli's bin/ferry-server.js)
  -h, --help            this text

Exit status: 0 when every transfer completed with a verified SHA-256, 1 otherwise, 2 for usage.`;

function positiveInt(name: string, text: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new RangeError(`--${name} must be an integer >= ${min}, got ${text}`);
  return n;
}

function byteSize(name: string, text: string): number {
  const n = parseSize(text);
  if (!(n >= 1)) throw new RangeError(`--${name} must be at least 1 byte, got ${text}`);
  return n;
}

/** Parses the bench's command line; throws RangeError with a message for people on bad input. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean' },
        full: { type: 'boolean' },
        size: { type: 'string' },
        runs: { type: 'string' },
        warmup: { type: 'string' },
        'stop-and-wait-size': { type: 'string' },
        scenario: { type: 'string', multiple: true },
        'impairment-runs': { type: 'string' },
        'skip-impairment': { type: 'boolean' },
        'skip-algorithms': { type: 'boolean' },
        'skip-crypto': { type: 'boolean' },
        'skip-peers': { type: 'boolean' },
        sshd: { type: 'string' },
        'skip-memory': { type: 'boolean' },
        trees: { type: 'boolean' },
        'skip-trees': { type: 'boolean' },
        'tree-runs': { type: 'string' },
        busy: { type: 'boolean' },
        'skip-busy': { type: 'boolean' },
        memory: { type: 'boolean' },
        'memory-size': { type: 'string' },
        'seed-compat': { type: 'boolean' },
        'skip-seed-compat': { type: 'boolean' },
        'fixed-cost': { type: 'boolean' },
        'skip-fixed-cost': { type: 'boolean' },
        'baseline-ferry': { type: 'string' },
        'baseline-ferry-server': { type: 'string' },
        json: { type: 'boolean' },
        out: { type: 'string' },
        'save-reference': { type: 'boolean' },
        tmp: { type: 'string' },
        keep: { type: 'boolean' },
        'cpu-prof': { type: 'string' },
        priority: { type: 'string' },
        render: { type: 'string' },
        ferry: { type: 'string' },
        'ferry-server': { type: 'string' },
        storage: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    throw new RangeError((error as Error).message);
  }
  const str = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  const quick = values.quick === true;
  const full = values.full === true;
  if (quick && full) throw new RangeError('--quick and --full exclude each other');
  // --fixed-cost alone runs that row only: the headline's transfers say nothing about start-up.
  const fixedCostOnly = values['fixed-cost'] === true && !full;
  if (fixedCostOnly && quick) throw new RangeError('--fixed-cost and --quick exclude each other');
  const mode: BenchMode = quick ? 'quick' : full ? 'full' : fixedCostOnly ? 'fixed-cost' : 'headline';
  if (fixedCostOnly) {
    const others = ['trees', 'memory', 'busy', 'seed-compat', 'scenario'].filter(
      (n) => values[n] !== undefined,
    );
    if (others.length > 0)
      throw new RangeError(
        `--fixed-cost runs the fixed-cost row alone; leave out ${others.map((n) => `--${n}`).join(', ')} (or use --full)`,
      );
  }
  if (str('baseline-ferry-server') !== undefined && str('baseline-ferry') === undefined)
    throw new RangeError('--baseline-ferry-server needs --baseline-ferry (the client that talks to it)');
  const saveReference = values['save-reference'] === true;
  if (saveReference && quick) throw new RangeError('--save-reference: a --quick smoke test is no reference');
  if (saveReference && fixedCostOnly)
    throw new RangeError('--save-reference: --fixed-cost alone is no reference (use --full)');
  if (saveReference && str('out') !== undefined)
    throw new RangeError('--save-reference writes results/reference.json; leave out --out');
  const scenarioNames = (values.scenario as string[] | undefined) ?? [];
  for (const name of scenarioNames) {
    if (!SCENARIOS.some((s) => s.name === name)) {
      throw new RangeError(
        `unknown scenario ${JSON.stringify(name)}; one of: ${SCENARIOS.map((s) => s.name).join(', ')}`,
      );
    }
  }
  const defaultScenarios =
    mode === 'quick'
      ? SCENARIOS.filter((s) => s.quick).map((s) => s.name)
      : mode === 'full'
        ? SCENARIOS.map((s) => s.name)
        : [];
  const sizeText = str('size');
  const runsText = str('runs');
  const warmupText = str('warmup');
  const sawText = str('stop-and-wait-size');
  const impairmentRunsText = str('impairment-runs');
  const memorySizeText = str('memory-size');
  const treeRunsText = str('tree-runs');
  const priorityText = str('priority');
  const priority = priorityText === undefined ? undefined : Number(priorityText);
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= -20 && priority <= 19)) {
    throw new RangeError(`--priority must be an integer from -20 to 19, got ${priorityText}`);
  }
  const storage = str('storage') ?? 'local';
  if (storage !== 'local' && storage !== 's3') {
    throw new RangeError(`--storage must be local or s3, got ${JSON.stringify(storage)}`);
  }
  const trees = values.trees === true || (full && values['skip-trees'] !== true);
  // rsync is a peer of the matrix, and of the trees (rsync -a is what people move trees with).
  const peers: PeerTool[] =
    values['skip-peers'] === true || fixedCostOnly
      ? []
      : PEER_TOOLS.filter((tool) => tool !== 'rsync' || full || trees);
  return {
    mode,
    quick,
    size: sizeText !== undefined ? byteSize('size', sizeText) : quick ? 8 * 1024 * 1024 : SEED_FILE_BYTES,
    runs: runsText !== undefined ? positiveInt('runs', runsText) : quick ? 1 : storage === 's3' ? 3 : 5,
    warmup: warmupText !== undefined ? positiveInt('warmup', warmupText, 0) : quick ? 0 : 1,
    stopAndWaitSize:
      sawText !== undefined ? byteSize('stop-and-wait-size', sawText) : quick ? 1024 * 1024 : 4 * 1024 * 1024,
    scenarios: scenarioNames.length > 0 ? scenarioNames : defaultScenarios,
    impairmentRuns:
      impairmentRunsText !== undefined ? positiveInt('impairment-runs', impairmentRunsText) : quick ? 1 : 3,
    skipImpairment: values['skip-impairment'] === true || fixedCostOnly,
    skipAlgorithms: values['skip-algorithms'] === true || fixedCostOnly,
    // The headline is about speed beside the peers; crypto is part of the smoke test and the matrix.
    skipCrypto: values['skip-crypto'] === true || mode === 'headline' || fixedCostOnly,
    peers,
    sshdPath: str('sshd'),
    trees,
    treeRuns: treeRunsText !== undefined ? positiveInt('tree-runs', treeRunsText) : quick ? 1 : 3,
    memory: values.memory === true || (full && values['skip-memory'] !== true),
    busy: values.busy === true || (full && values['skip-busy'] !== true),
    memorySize: memorySizeText !== undefined ? byteSize('memory-size', memorySizeText) : 1024 ** 3,
    seedCompat: values['seed-compat'] === true || (full && values['skip-seed-compat'] !== true),
    fixedCost: fixedCostOnly || (full && values['skip-fixed-cost'] !== true),
    baselineFerry: str('baseline-ferry'),
    baselineServer: str('baseline-ferry-server'),
    json: values.json === true,
    out: str('out'),
    saveReference,
    tmpDir: str('tmp'),
    keep: values.keep === true,
    cpuProf: str('cpu-prof'),
    ferryBin: str('ferry'),
    serverBin: str('ferry-server'),
    priority,
    render: str('render'),
    storage,
    help: values.help === true,
  };
}
