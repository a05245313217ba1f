/**
 * Progress of running transfers: bars on stderr when it is a terminal (several files at once via a
 * cli-progress MultiBar), throttled `progress` events with --json, nothing otherwise.
 */
import { createRequire } from 'node:module';
import type { MultiBar, SingleBar } from 'cli-progress';
import type { TransferProgress } from './client.js';
import { formatBytes, formatDuration, formatRate, type Output } from './output.js';

export interface TransferLabel {
  op: 'get' | 'put';
  remote: string;
  local: string;
  size: number;
}

export interface ProgressHandle {
  update(progress: TransferProgress): void;
  /** Marks the bar complete (success) or leaves it where it stopped (failure). */
  end(ok: boolean): void;
}

/** JSON progress events at most this often per transfer (about 4 per second). */
const JSON_INTERVAL_MS = 250;
/** The rate shown is the average over about this long, so it reacts but does not flicker. */
const RATE_WINDOW_MS = 2000;

class RateMeter {
  readonly #samples: { t: number; bytes: number }[] = [];

  sample(bytes: number, now = Date.now()): number {
    this.#samples.push({ t: now, bytes });
    while (this.#samples.length > 2 && now - this.#samples[1]!.t > RATE_WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0]!;
    const elapsed = (now - first.t) / 1000;
    return elapsed > 0.05 ? (bytes - first.bytes) / elapsed : 0;
  }
}

export class ProgressView {
  readonly #out: Output;
  #multi: MultiBar | undefined;
  readonly #bars: boolean;

  constructor(out: Output) {
    this.#out = out;
    this.#bars = out.interactive;
  }

  /** Starts showing one transfer; `label.size` may be 0 until the first update says more. */
  start(label: TransferLabel): ProgressHandle {
    const out = this.#out;
    const meter = new RateMeter();
    if (out.json) {
      let last = 0;
      return {
        update: (p) => {
          const now = Date.now();
          if (now - last < JSON_INTERVAL_MS) return;
          last = now;
          out.event({
            type: 'progress',
            op: label.op,
            remote: label.remote,
            local: label.local,
            phase: p.phase,
            bytes: p.bytes,
            size: p.size,
            rate: Math.round(meter.sample(p.bytes, now)),
          });
        },
        end: () => {},
      };
    }
    if (!this.#bars) return { update: () => {}, end: () => {} };
    // The bar appears with the first progress, once the server has accepted the request: a request
    // refused at once (no such file, a bad path) draws nothing.
    let bar: SingleBar | undefined;
    let startedAt = 0;
    let total = Math.max(label.size, 1);
    let size = label.size;
    // Bytes already held when a resumed transfer starts do not count towards its rate.
    let startBytes: number | undefined;
    const name = label.op === 'get' ? label.remote : label.local;
    const show = (): SingleBar => {
      if (bar === undefined) {
        startedAt = Date.now();
        bar = this.#multiBar().create(total, 0, {
          name: shorten(name.split('/').pop() ?? name, NAME_WIDTH),
          phase: '',
          text: label.size > 0 ? `0 B/${formatBytes(label.size)}` : '',
          rate: '',
          eta: '',
        });
      }
      return bar;
    };
    return {
      update: (p) => {
        const shown = show();
        if (p.phase === 'transferring') {
          size = p.size;
          startBytes ??= p.bytes;
        }
        if (Math.max(p.size, 1) !== total) {
          total = Math.max(p.size, 1);
          shown.setTotal(total);
        }
        const rate = meter.sample(p.bytes);
        const left = p.size - p.bytes;
        shown.update(Math.min(Math.max(p.bytes, 0), total), {
          phase: p.phase === 'transferring' ? '' : p.phase,
          text: `${formatBytes(p.bytes)}/${formatBytes(p.size)}`,
          rate: rate > 0 ? formatRate(rate) : '',
          eta: rate > 0 && left > 0 ? `ETA ${formatDuration(left / rate)}` : '',
        });
      },
      end: (ok) => {
        if (bar === undefined) return;
        if (!ok) {
          bar.update({ phase: 'stopped', eta: '' });
          return;
        }
        const seconds = (Date.now() - startedAt) / 1000;
        bar.update(total, {
          phase: 'done',
          text: formatBytes(size),
          rate: seconds > 0 ? formatRate((size - (startBytes ?? 0)) / seconds) : '',
          eta: '',
        });
      },
    };
  }

  /** Removes the bars from the screen's live area; later output goes below them. */
  stop(): void {
    this.#multi?.stop();
    this.#multi = undefined;
  }

  #multiBar(): MultiBar {
    if (this.#multi !== undefined) return this.#multi;
    // Loaded only when bars are drawn (it is CommonJS): a plain `ferry ls` never pays for it.
    const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
    const out = this.#out;
    this.#multi = new cliProgress.MultiBar({
      stream: out.stderr,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      fps: 10,
      barsize: barWidth(out.stderr as { columns?: number }),
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
      format: (options, params, payload: Record<string, string>) => {
        const size = options.barsize ?? 20;
        const filled = Math.round(Math.min(1, Math.max(0, params.progress)) * size);
        const bar = '\u2588'.repeat(filled) + '\u2591'.repeat(size - filled);
        const percent = `${Math.floor(params.progress * 100)}%`.padStart(4);
        const tail = [payload.text, payload.rate, payload.eta, payload.phase].filter((s) => s).join('  ');
        return `${(payload.name ?? '').padEnd(NAME_WIDTH)} ${bar} ${percent}  ${tail}`;
      },
    });
    return this.#multi;
  }
}

/**
 * One display for a whole tree transfer: files done of the total, bytes, rate and ETA on one bar
 * (stderr, a terminal only), or a `progress` event about four times a second with --json.
 */
export class TreeProgress {
  readonly #out: Output;
  readonly #op: 'get' | 'put';
  readonly #name: string;
  readonly #meter = new RateMeter();
  #bar: SingleBar | undefined;
  #filesTotal = 0;
  #bytesTotal = 0;
  #files = 0;
  #bytes = 0;
  #lastJson = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(out: Output, op: 'get' | 'put', name: string) {
    this.#out = out;
    this.#op = op;
    this.#name = name;
  }

  /** The totals are known (the tree was scanned or walked). */
  start(files: number, bytes: number): void {
    this.#filesTotal = files;
    this.#bytesTotal = bytes;
    if (this.#out.interactive) {
      const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
      const out = this.#out;
      this.#bar = new cliProgress.SingleBar({
        stream: out.stderr,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        fps: 10,
        barsize: barWidth(out.stderr as { columns?: number }, TREE_TEXT_COLUMNS),
        format: (options, params, payload: Record<string, string>) => {
          const size = options.barsize ?? 20;
          const filled = Math.round(Math.min(1, Math.max(0, params.progress)) * size);
          const bar = '\u2588'.repeat(filled) + '\u2591'.repeat(size - filled);
          const percent = `${Math.floor(params.progress * 100)}%`.padStart(4);
          const tail = [payload.files, payload.text, payload.rate, payload.eta].filter((t) => t).join('  ');
          return `${shorten(this.#name, NAME_WIDTH).padEnd(NAME_WIDTH)} ${bar} ${percent}  ${tail}`;
        },
      });
      this.#bar.start(Math.max(bytes, 1), 0, this.#payload(0));
    }
    // The display moves with the bytes, but also while nothing does (a rate that falls, an ETA).
    this.#timer = setInterval(() => this.#show(), 250);
    this.#timer.unref();
    this.#show();
  }

  /** The totals grow (a remote tree's walk streams in while files already move). */
  grow(files: number, bytes: number): void {
    this.#filesTotal += files;
    this.#bytesTotal += bytes;
    this.#bar?.setTotal(Math.max(this.#bytesTotal, 1));
  }

  /** Bytes moved (or found already there) since the last call. */
  addBytes(bytes: number): void {
    this.#bytes += bytes;
  }

  /** One more file is done (or failed, or skipped). */
  fileDone(): void {
    this.#files++;
  }

  get files(): number {
    return this.#files;
  }

  #payload(rate: number): Record<string, string> {
    const left = this.#bytesTotal - this.#bytes;
    return {
      files: `${this.#files}/${this.#filesTotal} files`,
      text: `${formatBytes(this.#bytes)}/${formatBytes(this.#bytesTotal)}`,
      rate: rate > 0 ? formatRate(rate) : '',
      eta: rate > 0 && left > 0 ? `ETA ${formatDuration(left / rate)}` : '',
    };
  }

  #show(): void {
    const now = Date.now();
    const rate = this.#meter.sample(this.#bytes, now);
    this.#bar?.update(Math.min(this.#bytes, Math.max(this.#bytesTotal, 1)), this.#payload(rate));
    if (this.#out.json && now - this.#lastJson >= JSON_INTERVAL_MS) {
      this.#lastJson = now;
      this.#out.event({
        type: 'progress',
        op: this.#op,
        tree: true,
        files: this.#files,
        filesTotal: this.#filesTotal,
        bytes: this.#bytes,
        size: this.#bytesTotal,
        rate: Math.round(rate),
      });
    }
  }

  /** Stops the display; the bar stays where it ended. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#bar !== undefined) {
      this.#bar.update(Math.min(this.#bytes, Math.max(this.#bytesTotal, 1)), this.#payload(0));
      this.#bar.stop();
      this.#bar = undefined;
    }
  }
}

/** Columns taken by everything but the bar: name, percentage, "16.7 MB/60.0 MB", rate, ETA. */
const TEXT_COLUMNS = 64;
/** A tree's line also says "1234/10000 files". */
const TREE_TEXT_COLUMNS = TEXT_COLUMNS + 18;
const NAME_WIDTH = 18;

/** The bar takes what is left of the terminal's width, so a line never wraps. */
function barWidth(stream: { columns?: number }, textColumns = TEXT_COLUMNS): number {
  const columns = stream.columns ?? 80;
  return Math.max(8, Math.min(30, columns - textColumns));
}

function shorten(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}\u2026`;
}
