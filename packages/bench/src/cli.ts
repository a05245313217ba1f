/**
 * `pnpm bench`: times the real ferry bins (and scp / sftp) on loopback and through the impairment
 * proxy, verifies every transfer by SHA-256, prints a markdown table and a verdict, and writes the
 * JSON result and an SVG chart.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchOptions, parseBenchArgs, USAGE } from './args.js';
import { type BenchResult, runBench } from './bench.js';
import { hasChart, renderSvg } from './chart.js';
import { isEntryPoint } from './entry.js';
import { BenchError } from './ferry.js';
import { renderMarkdown, verdictLine } from './report.js';
import { renderS3Markdown, runS3Bench } from './s3-bench.js';

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

/** Where runs go unless told otherwise: git ignores this directory, so a run never dirties the checkout. */
export const RUNS_DIR = join(RESULTS_DIR, 'runs');
/** The run committed on purpose (--save-reference), which the README's figures come from. */
export const REFERENCE_PATH = join(RESULTS_DIR, 'reference.json');

/** The result path of a run: results/reference.json with --save-reference, else a new file in results/runs/. */
export function defaultOutPath(
  options: Pick<BenchOptions, 'mode' | 'saveReference'>,
  date = new Date(),
): string {
  if (options.saveReference) return REFERENCE_PATH;
  // 2026-12-08T03-21-08Z-full.json: sorts by time, says which kind of run it was.
  const stamp = date
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  const base = join(RUNS_DIR, `${stamp}${options.mode === 'headline' ? '' : `-${options.mode}`}`);
  for (let n = 1; ; n++) {
    const path = n === 1 ? `${base}.json` : `${base}-${n}.json`;
    if (!existsSync(path)) return path;
  }
}

export function svgPathFor(jsonPath: string): string {
  return jsonPath.endsWith('.json') ? `${jsonPath.slice(0, -5)}.svg` : `${jsonPath}.svg`;
}

/** Writes via a temp file and a rename, so a reader never sees half a result. */
async function writeAtomically(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: BenchOptions;
  try {
    // `pnpm bench -- --quick` passes the separator through.
    options = parseBenchArgs(argv[0] === '--' ? argv.slice(1) : argv);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options.render !== undefined) {
    const path = resolve(options.render);
    const earlier = JSON.parse(await readFile(path, 'utf8')) as BenchResult;
    let chart = '';
    if (hasChart(earlier)) {
      await writeAtomically(svgPathFor(path), renderSvg(earlier));
      chart = `chart:  ${svgPathFor(path)}\n`;
    }
    process.stdout.write(`${renderMarkdown(earlier)}\n${chart}\n${verdictLine(earlier)}\n`);
    return 0;
  }
  // With --json, stdout carries the result object only; everything for people goes to stderr.
  const human = options.json ? process.stderr : process.stdout;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const tmpDir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'ferry-bench-'));
  if (options.storage === 's3') return benchS3(options, tmpDir, log, human);
  let result: BenchResult;
  try {
    result = await runBench({ options, tmpDir, log });
  } catch (error) {
    const message = error instanceof BenchError ? error.message : ((error as Error).stack ?? String(error));
    process.stderr.write(`bench: ${message}\n`);
    if (!options.keep) await rm(tmpDir, { recursive: true, force: true });
    else log(`temp files kept in ${tmpDir}`);
    return 1;
  }
  if (options.keep || result.failures.length > 0) log(`temp files kept in ${tmpDir}`);
  else await rm(tmpDir, { recursive: true, force: true });

  const jsonPath = resolve(options.out ?? defaultOutPath(options));
  const svgPath = svgPathFor(jsonPath);
  const json = `${JSON.stringify(result, null, 2)}\n`;
  await writeAtomically(jsonPath, json);
  // A --fixed-cost run alone has no throughput to draw.
  const drawn = hasChart(result);
  if (drawn) await writeAtomically(svgPath, renderSvg(result));
  human.write(
    `\n${renderMarkdown(result)}\nresult: ${jsonPath}\n${drawn ? `chart:  ${svgPath}\n` : ''}\n${verdictLine(result)}\n`,
  );
  if (options.json) process.stdout.write(json);
  if (result.failures.length > 0) {
    process.stderr.write(
      `\nbench: ${result.failures.length} transfer(s) FAILED${
        result.failures.some((f) => f.includes('SHA-256 MISMATCH')) ? ', including a SHA-256 MISMATCH' : ''
      }:\n${result.failures.map((f) => `  - ${f}`).join('\n')}\n`,
    );
    return 1;
  }
  return 0;
}

/** `--storage s3`: its own table and JSON (results/runs/…-s3.json); no chart. */
async function benchS3(
  options: BenchOptions,
  tmpDir: string,
  log: (line: string) => void,
  human: NodeJS.WritableStream,
): Promise<number> {
  try {
    const result = await runS3Bench({ options, tmpDir, log });
    const json = `${JSON.stringify(result, null, 2)}\n`;
    const base = defaultOutPath({ mode: 'full', saveReference: false }).replace(
      /-full(-\d+)?\.json$/,
      '-s3$1.json',
    );
    const jsonPath = resolve(options.out ?? base);
    await writeAtomically(jsonPath, json);
    human.write(`\n${renderS3Markdown(result)}\nresult: ${jsonPath}\n`);
    if (options.json) process.stdout.write(json);
    if (result.failures.length > 0) {
      process.stderr.write(
        `\nbench: ${result.failures.length} transfer(s) FAILED:\n${result.failures.map((f) => `  - ${f}`).join('\n')}\n`,
      );
      return 1;
    }
    return 0;
  } catch (error) {
    const message = error instanceof BenchError ? error.message : ((error as Error).stack ?? String(error));
    process.stderr.write(`bench: ${message}\n`);
    return 1;
  } finally {
    if (!options.keep) await rm(tmpDir, { recursive: true, force: true });
    else log(`temp files kept in ${tmpDir}`);
  }
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`bench: bug: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
