/**
 * What someone installing ferry from a registry gets. Every package in packages/ is packed with
 * `pnpm pack` (which writes real version ranges for `workspace:^`, as `pnpm publish` does), each
 * tarball is checked for what publishing needs, and the publishable ones are installed together
 * with npm into an empty directory outside the repository, as a registry would serve them. Then
 * the installed `ferry` and `ferry-server` run for real: help, and a put and get on loopback.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { randomFile, sha256File } from '@ferry/e2e-tests/files';
import { runProcess } from '@ferry/e2e-tests/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binsOf,
  describeResult,
  type Manifest,
  REPO_ROOT,
  runtimeDependencies,
  type WorkspacePackage,
  workspacePackages,
} from './workspace.js';

// Generous: pnpm and npm start slowly on a loaded machine, and npm may fetch third-party packages.
const PACK_TIMEOUT_MS = 60_000;
const INSTALL_TIMEOUT_MS = 300_000;
const COMMAND_TIMEOUT_MS = 60_000;

interface PackedPackage {
  source: WorkspacePackage;
  tarball: string;
  /** The tarball unpacked: its package.json as published and every file in it. */
  unpacked: string;
  manifest: Manifest;
  /** Paths relative to the package root, with forward slashes. */
  files: string[];
}

const packages = workspacePackages();
const names = new Set(packages.map((p) => p.manifest.name));
const isPrivate = (name: string) => packages.find((p) => p.manifest.name === name)?.manifest.private === true;

let scratch: string | undefined;
const packed = new Map<string, PackedPackage>();
const children = new Set<ChildProcess>();

beforeAll(
  async () => {
    scratch = await mkdtemp(join(tmpdir(), 'ferry-packaging-'));
    const fromRepo = relative(REPO_ROOT, await realpath(scratch));
    if (!fromRepo.startsWith('..') && !isAbsolute(fromRepo)) {
      throw new Error(`the temporary directory ${scratch} is inside the repository; point TMPDIR elsewhere`);
    }
    await mkdir(join(scratch, 'tarballs'));
    for (const pkg of packages) packed.set(pkg.manifest.name, await pack(pkg, scratch));
  },
  PACK_TIMEOUT_MS * (packages.length + 1),
);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

async function pack(pkg: WorkspacePackage, into: string): Promise<PackedPackage> {
  const label = `pnpm pack (${pkg.manifest.name})`;
  const result = await runProcess('pnpm', ['pack', '--json', '--pack-destination', join(into, 'tarballs')], {
    cwd: pkg.dir,
    timeoutMs: PACK_TIMEOUT_MS,
  });
  if (result.code !== 0) throw new Error(describeResult(label, result));
  const { filename } = JSON.parse(result.stdout) as { filename: string };
  const unpacked = join(into, 'unpacked', pkg.manifest.name);
  await mkdir(unpacked, { recursive: true });
  const untar = await runProcess('tar', ['-xzf', filename, '-C', unpacked, '--strip-components=1'], {
    cwd: into,
    timeoutMs: PACK_TIMEOUT_MS,
  });
  if (untar.code !== 0) throw new Error(describeResult(`tar -xzf ${filename}`, untar));
  const entries = await readdir(unpacked, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(unpacked, join(entry.parentPath, entry.name)).split('\\').join('/'));
  const manifest = JSON.parse(await readFile(join(unpacked, 'package.json'), 'utf8')) as Manifest;
  return { source: pkg, tarball: filename, unpacked, manifest, files };
}

function packedOf(name: string): PackedPackage {
  const found = packed.get(name);
  if (found === undefined) throw new Error(`${name} was not packed`);
  return found;
}

/** Every path a manifest names (bin, main, types, exports targets), without its leading `./`. */
function namedPaths(manifest: Manifest): string[] {
  const paths = [...Object.values(binsOf(manifest))];
  if (manifest.main !== undefined) paths.push(manifest.main);
  if (manifest.types !== undefined) paths.push(manifest.types);
  const walk = (target: unknown): void => {
    if (typeof target === 'string') paths.push(target);
    else if (target !== null && typeof target === 'object') Object.values(target).forEach(walk);
  };
  walk(manifest.exports);
  return paths.filter((path) => !path.includes('*')).map((path) => path.replace(/^\.\//, ''));
}

/** Export condition objects whose `types` is not the first key (TypeScript reads them in order). */
function typesNotFirst(exports: unknown, at = 'exports'): string[] {
  if (exports === null || typeof exports !== 'object') return [];
  const keys = Object.keys(exports);
  const here = keys.includes('types') && keys[0] !== 'types' ? [at] : [];
  return [
    ...here,
    ...Object.entries(exports).flatMap(([key, value]) =>
      typesNotFirst(value, `${at}[${JSON.stringify(key)}]`),
    ),
  ];
}

/** What would stop this packed package from being published and installed from a registry. */
async function publishingProblems(pkg: PackedPackage): Promise<string[]> {
  const { manifest, files } = pkg;
  const problems: string[] = [];
  if (typeof manifest.license !== 'string' || manifest.license === '') problems.push('no license');
  if (manifest.engines?.node === undefined) problems.push('no engines.node');
  if (manifest.type !== 'module') problems.push('not "type": "module"');
  if (!Array.isArray(manifest.files)) problems.push('no "files" list (everything in the folder would ship)');
  problems.push(...typesNotFirst(manifest.exports).map((at) => `${at}: "types" is not the first condition`));
  for (const path of namedPaths(manifest)) {
    if (!files.includes(path))
      problems.push(`${path} is named in package.json but not in the tarball (built?)`);
  }
  // A `./testing` export is a published API (fault injection for users' tests), not test material.
  const exportsTesting =
    typeof manifest.exports === 'object' && manifest.exports !== null && './testing' in manifest.exports;
  const material = exportsTesting
    ? /\.tsbuildinfo$|(^|\/)(test|tests|__tests__)\/|\.(test|spec)\.[cm]?[jt]s$/
    : /\.tsbuildinfo$|(^|\/)(test|tests|testing|__tests__)\/|\.(test|spec)\.[cm]?[jt]s$/;
  for (const file of files) {
    if (material.test(file)) {
      problems.push(`${file} is build or test material`);
    }
  }
  for (const [dependency, range] of Object.entries(runtimeDependencies(manifest))) {
    if (/^(workspace|link|file|portal|catalog):/.test(range)) {
      problems.push(`dependency ${dependency} is "${range}", which no registry can serve`);
    }
    if (names.has(dependency) && isPrivate(dependency)) {
      problems.push(`dependency ${dependency} is private, so it is never published`);
    }
  }
  for (const [command, path] of Object.entries(binsOf(manifest))) {
    const file = join(pkg.unpacked, path);
    if (!existsSync(file)) continue;
    const text = await readFile(file, 'utf8');
    // pnpm's and npm's bin shims read this line and run its program themselves: `env -S NAME= node`
    // breaks them; plain node and /bin/sh (a launcher that then runs node) work.
    if (!text.startsWith('#!/usr/bin/env node\n') && !text.startsWith('#!/bin/sh\n'))
      problems.push(`bin ${command} starts with neither #!/usr/bin/env node nor #!/bin/sh`);
  }
  return problems;
}

describe('pnpm pack of every package in packages/', () => {
  it('finds the packages, the two commands among them', () => {
    const commands = packages.flatMap((p) => Object.keys(binsOf(p.manifest)));
    expect(commands).toEqual(expect.arrayContaining(['ferry', 'ferry-server']));
  });

  for (const { manifest } of packages) {
    if (manifest.private === true) {
      it(`${manifest.name} (private) packs, and no publishable package depends on it at run time`, () => {
        expect(packedOf(manifest.name).files).toContain('package.json');
        const dependents = packages
          .filter((p) => p.manifest.private !== true && manifest.name in runtimeDependencies(p.manifest))
          .map((p) => p.manifest.name);
        expect(dependents).toEqual([]);
      });
    } else {
      it(`${manifest.name} packs into a tarball a registry could serve`, async () => {
        expect(await publishingProblems(packedOf(manifest.name))).toEqual([]);
      });
    }
  }
});

describe('the publishable tarballs installed with npm outside the repository', () => {
  let installDir = '';
  let home = '';
  const installedBin = (command: string) => join(installDir, 'node_modules', '.bin', command);

  beforeAll(async () => {
    installDir = join(scratch!, 'install');
    home = join(scratch!, 'home');
    await mkdir(installDir);
    await mkdir(home);
    await writeFile(
      join(installDir, 'package.json'),
      `${JSON.stringify({ name: 'ferry-install-check', version: '0.0.0', private: true }, null, 2)}\n`,
    );
    const tarballs = [...packed.values()].filter((p) => p.manifest.private !== true).map((p) => p.tarball);
    const args = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs];
    const result = await runProcess('npm', args, { cwd: installDir, timeoutMs: INSTALL_TIMEOUT_MS });
    if (result.code !== 0) throw new Error(describeResult('npm install (the tarballs)', result));
  }, INSTALL_TIMEOUT_MS + 30_000);

  /** The environment of a user with no ferry configuration: own HOME, no key in the environment. */
  const userEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, 'config') };
    env.NO_COLOR = '1';
    delete env.FERRY_KEY;
    delete env.FERRY_DEBUG;
    return env;
  };

  it(
    'installs every command of every publishable package, and each prints its help',
    async () => {
      const commands = packages
        .filter((p) => p.manifest.private !== true)
        .flatMap((p) => Object.keys(binsOf(p.manifest)));
      expect(commands).toEqual(expect.arrayContaining(['ferry', 'ferry-server']));
      for (const command of commands) {
        // Run as a user would: the installed link itself (shebang and executable bit included).
        const target = await realpath(installedBin(command));
        expect(relative(installDir, target).startsWith('..'), `${command} → ${target}`).toBe(false);
        const result = await runProcess(installedBin(command), ['--help'], {
          cwd: installDir,
          env: userEnv(),
          timeoutMs: COMMAND_TIMEOUT_MS,
        });
        expect(result.code, describeResult(`${command} --help`, result)).toBe(0);
        expect(result.stdout).toContain('Usage');
      }
    },
    COMMAND_TIMEOUT_MS * 4,
  );

  it(
    'the installed ferry starts Node without NODE_EXTRA_CA_CERTS (it makes no TLS connection); ferry-server keeps it',
    async () => {
      // Node warns on stderr when it loads the variable's file and the file is missing: the warning
      // shows whether the process that ran the command loaded it (30-50 ms of every start when set).
      const env = { ...userEnv(), NODE_EXTRA_CA_CERTS: join(home, 'no-such-ca.pem') };
      const warning = 'Ignoring extra certs';
      const ferry = await runProcess(installedBin('ferry'), ['--version'], {
        cwd: installDir,
        env,
        timeoutMs: COMMAND_TIMEOUT_MS,
      });
      expect(ferry.code, describeResult('ferry --version', ferry)).toBe(0);
      expect(ferry.stderr).not.toContain(warning);
      const server = await runProcess(installedBin('ferry-server'), ['--version'], {
        cwd: installDir,
        env,
        timeoutMs: COMMAND_TIMEOUT_MS,
      });
      expect(server.code, describeResult('ferry-server --version', server)).toBe(0);
      expect(server.stderr).toContain(warning);
    },
    COMMAND_TIMEOUT_MS * 2,
  );

  it(
    'the installed ferry puts a file to the installed ferry-server and gets it back intact',
    async () => {
      const root = join(home, 'served');
      const work = join(home, 'work');
      const keyFile = join(home, 'key');
      await mkdir(root);
      await mkdir(work);
      const env = userEnv();
      const ferry = async (args: string[]) => {
        const result = await runProcess(installedBin('ferry'), args, {
          cwd: work,
          env,
          timeoutMs: COMMAND_TIMEOUT_MS,
        });
        expect(result.code, describeResult(`ferry ${args.join(' ')}`, result)).toBe(0);
        return result;
      };

      await ferry(['keygen', keyFile]);
      const server = await startServer(
        installedBin('ferry-server'),
        ['0', '--host', '127.0.0.1', '--root', root, '--key', keyFile],
        env,
      );
      const address = `127.0.0.1:${server.port}`;
      const sent = await randomFile(join(work, 'sample.bin'), 256 * 1024 + 7);

      await ferry(['put', address, 'sample.bin', '--key', keyFile]);
      expect(await sha256File(join(root, 'sample.bin'))).toBe(sent);
      await ferry(['get', address, 'sample.bin', 'returned.bin', '--key', keyFile]);
      expect(await sha256File(join(work, 'returned.bin'))).toBe(sent);

      server.child.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 0, signal: null });
    },
    COMMAND_TIMEOUT_MS * 5,
  );
});

interface StartedServer {
  child: ChildProcess;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the server command and resolves once it prints its "serving … udp://HOST:PORT" line. */
function startServer(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<StartedServer> {
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    output += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry-server printed no "serving" line in ${COMMAND_TIMEOUT_MS} ms:\n${output}`));
    }, COMMAND_TIMEOUT_MS);
    createInterface({ input: child.stdout }).on('line', (line) => {
      output += `${line}\n`;
      const serving = /\bserving\b.*\budp:\/\/\S*:(\d+)\b/.exec(line);
      if (serving === null) return;
      clearTimeout(timer);
      resolve({ child, port: Number(serving[1]), exited });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ferry-server exited (${code ?? signal}) before serving:\n${output}`));
    });
  });
}
