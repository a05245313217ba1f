/**
 * ferry and scp on a real 1500-MTU link (see netns.ts): a ferry-server and a throwaway sshd in one
 * network namespace, the clients in the other, the same file, runs interleaved. Needs root, iproute2
 * and nftables; otherwise the result says why it did not run.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DirectionSummary } from './bench.js';
import { summarizeDirection } from './bench.js';
import type { Workspace } from './ferry.js';
import { type Contender, runInterleaved } from './interleave.js';
import {
  createNamespaceLink,
  ISSUE_LINK,
  type NamespaceLink,
  type NamespaceLinkConfig,
  namespaceLinkUnavailable,
} from './netns.js';
import { type RunningSshd, SSHD_PATH, sshdUnavailable, startSshd } from './peers/sshd.js';
import { peerUnavailable, peerVersion, runPeerTransfer } from './peers/tools.js';
import { type Summary, summarize, summarizeBy } from './summary.js';
import { runTransfer, type SourceFile, type TransferRecord } from './transfer.js';

/** A file of about 10 s at 100 Mbit/s, as the impairment scenarios move. */
export const NAMESPACE_FILE_BYTES = 120 * 1024 * 1024;

export interface LinkDirection extends DirectionSummary {
  /** File bits over the client process's wall time (start-up, handshake, transfer) / link rate. */
  fraction?: Summary;
  /** The same over the client's own timing of the transfer (ferry's done event; not for scp). */
  transferFraction?: Summary;
  /** Bytes of the blocks ferry's transfer used (its client's stats), when it says. */
  blockSize?: Summary;
}

export interface LinkTool {
  name: 'ferry' | 'scp';
  /** Why it did not run (no sshd, no scp); absent when it ran. */
  notRun?: string;
  version?: string;
  put: LinkDirection;
  get: LinkDirection;
}

export interface NamespaceLinkResult {
  /** Why the scenario did not run (not root, a tool missing, the link could not be built). */
  notRun?: string;
  link: NamespaceLinkConfig;
  fileBytes: number;
  runs: number;
  tools: LinkTool[];
  /** ferry's speed / scp's: scp's wall seconds / ferry's in the same round, per direction. */
  ferryVsScp: { put?: Summary; get?: Summary };
}

function linkDirection(runs: TransferRecord[], rateBitsPerSecond: number): LinkDirection {
  const good = runs.filter((r) => r.ok);
  const out: LinkDirection = summarizeDirection(runs);
  const set = <K extends keyof LinkDirection>(key: K, value: LinkDirection[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set(
    'fraction',
    summarizeBy(good, (r) => (r.bytes * 8) / r.wallSeconds / rateBitsPerSecond),
  );
  set(
    'transferFraction',
    summarizeBy(good, (r) =>
      r.transferSeconds ? (r.bytes * 8) / r.transferSeconds / rateBitsPerSecond : undefined,
    ),
  );
  set(
    'blockSize',
    summarizeBy(good, (r) => {
      const v = r.clientStats?.blockSize;
      return typeof v === 'number' ? v : undefined;
    }),
  );
  return out;
}

/** Paired speed ratios: b's wall seconds / a's, round by round where both verified. */
export function pairedSpeed(a: TransferRecord[], b: TransferRecord[]): Summary | undefined {
  const ratios: number[] = [];
  a.forEach((x, i) => {
    const y = b[i];
    if (x.ok && y?.ok) ratios.push(y.wallSeconds / x.wallSeconds);
  });
  return summarize(ratios);
}

export interface NamespaceLinkOptions {
  ws: Workspace;
  source: SourceFile;
  runs: number;
  /** Leave scp out (--skip-peers). */
  skipPeers: boolean;
  sshdPath?: string | undefined;
  record: (r: TransferRecord, label: string) => TransferRecord;
  log: (line: string) => void;
  link?: NamespaceLinkConfig;
}

const empty = (): LinkDirection => ({ runs: [], ok: false });

/** Builds the link, runs ferry and scp over it interleaved, and deletes it (also on failure). */
export async function runNamespaceLink(options: NamespaceLinkOptions): Promise<NamespaceLinkResult> {
  const config = options.link ?? ISSUE_LINK;
  const { ws, source, log } = options;
  const base = { link: config, fileBytes: source.size, runs: options.runs, ferryVsScp: {} };
  const notRun = (why: string): NamespaceLinkResult => ({
    ...base,
    notRun: why,
    tools: [],
  });
  const why = namespaceLinkUnavailable();
  if (why !== undefined) {
    log(`namespace link: not run (${why})`);
    return notRun(why);
  }
  let link: NamespaceLink;
  try {
    link = await createNamespaceLink(config, log);
  } catch (error) {
    const message = `the link could not be built: ${(error as Error).message}`;
    log(`namespace link: not run (${message})`);
    return notRun(message);
  }
  let sshd: RunningSshd | undefined;
  try {
    const timeoutMs = 60_000 + ((source.size * 8) / config.rateBitsPerSecond) * 20_000;
    const serverWrap = link.exec(link.server);
    const clientWrap = link.exec(link.client);
    const ferry: Contender = {
      name: 'ferry',
      run: (op) =>
        runTransfer(ws, {
          op,
          source,
          timeoutMs,
          server: { host: link.server.address, wrap: serverWrap },
          clientWrap,
        }),
      runs: { put: [], get: [] },
    };
    const contenders: Contender[] = [ferry];
    let scpNotRun: string | undefined;
    let scpVersion: string | undefined;
    if (options.skipPeers) scpNotRun = '--skip-peers';
    else {
      const sshdPath = options.sshdPath ?? SSHD_PATH;
      scpNotRun = sshdUnavailable(sshdPath) ?? peerUnavailable('scp');
      if (scpNotRun === undefined) {
        sshd = await startSshd(join(ws.dir, 'sshd-netns'), {
          sshdPath,
          host: link.server.address,
          wrap: serverWrap,
          log,
        });
        const client = sshd.client;
        const remoteDir = join(ws.dir, 'netns-peer-root');
        await mkdir(remoteDir, { recursive: true });
        scpVersion = await peerVersion('scp');
        contenders.push({
          name: 'scp',
          run: (op) =>
            runPeerTransfer({
              tool: 'scp',
              op,
              source,
              client,
              remoteDir,
              localDir: ws.clientDir,
              timeoutMs,
              wrap: clientWrap,
            }),
          runs: { put: [], get: [] },
        });
      }
    }
    log(
      `namespace link: ${contenders.map((c) => c.name).join(' and ')}, ${source.size} bytes, ` +
        `${options.runs} run(s) each way, interleaved`,
    );
    await runInterleaved(contenders, options.runs, 0, options.record, log);
    const rate = config.rateBitsPerSecond;
    const tools: LinkTool[] = [
      {
        name: 'ferry',
        put: linkDirection(ferry.runs.put, rate),
        get: linkDirection(ferry.runs.get, rate),
      },
    ];
    const scp = contenders.find((c) => c.name === 'scp');
    if (scp === undefined) {
      tools.push({ name: 'scp', notRun: scpNotRun ?? 'not run', put: empty(), get: empty() });
    } else {
      tools.push({
        name: 'scp',
        ...(scpVersion !== undefined ? { version: scpVersion } : {}),
        put: linkDirection(scp.runs.put, rate),
        get: linkDirection(scp.runs.get, rate),
      });
    }
    const ferryVsScp: NamespaceLinkResult['ferryVsScp'] = {};
    if (scp !== undefined) {
      for (const op of ['put', 'get'] as const) {
        const ratio = pairedSpeed(ferry.runs[op], scp.runs[op]);
        if (ratio !== undefined) ferryVsScp[op] = ratio;
      }
    }
    return { ...base, tools, ferryVsScp };
  } finally {
    await sshd?.stop();
    await link.delete();
  }
}
