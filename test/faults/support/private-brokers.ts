/**
 * Private broker processes for the faults that need a broker of their own: broker kill -9 and
 * start, and Kafka behind the proxy (its advertised listeners must name the proxy's address).
 * Each runs from the binaries scripts/brokers/*.sh installed, on free ports, with its data in a
 * temp folder removed by `stop()`. The shared brokers are never touched.
 *
 * `kill9()` is SIGKILL of the broker's whole process group (Postgres' backends included, as when
 * its container is killed); `start()` starts it again on the same ports and data and resolves
 * once it serves.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FaultBroker } from './targets.ts';
import type { Endpoint } from './toxiproxy.ts';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const cache = process.env.EVENTWIRE_BROKERS_CACHE ?? join(repo, '.brokers', 'cache');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PrivateBroker {
  readonly broker: FaultBroker;
  /** The URL of the broker itself (Kafka: its direct listener). */
  readonly url: string;
  /**
   * Kafka: one listener per proxy. A Toxiproxy proxy listening on `listen` (127.0.0.1) in front of
   * `upstream` is the address that listener advertises, so a client that bootstraps through the
   * proxy keeps talking through it.
   */
  readonly proxySlots?: { listen: number; upstream: Endpoint }[];
  /** ms from spawn to serving, per start. */
  readonly startMs: number[];
  kill9(): Promise<void>;
  start(): Promise<void>;
  /** Kill and remove the data. */
  stop(): Promise<void>;
  logTail(): string;
}

/** A port nobody listens on now (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Sends `hello`, true once the answer so far satisfies `accept` (within `ms`). */
function probe(port: number, hello: string | undefined, accept: (s: string) => boolean, ms = 2_000) {
  return new Promise<boolean>((resolve) => {
    let got = '';
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('connect', () => hello && socket.write(hello));
    socket.on('data', (b) => {
      got += b.toString('latin1');
      if (accept(got)) done(true);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

async function waitUntil(
  check: () => Promise<boolean>,
  ms: number,
  what: string,
  proc: () => ChildProcess | undefined,
) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (proc()?.exitCode != null) throw new Error(`${what} exited with ${proc()!.exitCode}`);
    await sleep(200);
  }
  throw new Error(`${what} not ready within ${ms} ms`);
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {}
  }
});

interface Spec {
  broker: FaultBroker;
  url: string;
  dir: string;
  proxySlots?: PrivateBroker['proxySlots'];
  command: () => { bin: string; args: string[]; uid?: number; gid?: number; env?: Record<string, string> };
  /** after the process group is killed (daemons it left behind) */
  afterStop?: () => void;
  ready: () => Promise<boolean>;
  readyMs: number;
  port: number;
}

function managed(spec: Spec): PrivateBroker {
  let proc: ChildProcess | undefined;
  const logFile = join(spec.dir, 'broker.log');
  const startMs: number[] = [];
  const kill9 = async () => {
    const p = proc;
    if (!p || p.exitCode != null || p.signalCode != null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {}
    await Promise.race([gone, sleep(10_000)]);
    live.delete(p);
    // until nothing listens on the port any more (every process of the group gone)
    for (let i = 0; i < 50 && (await tcpOpen(spec.port)); i++) await sleep(100);
  };
  return {
    broker: spec.broker,
    url: spec.url,
    ...(spec.proxySlots ? { proxySlots: spec.proxySlots } : {}),
    startMs,
    kill9,
    async start() {
      const began = Date.now();
      const { bin, args, uid, gid, env } = spec.command();
      const log = openSync(logFile, 'a');
      proc = spawn(bin, args, {
        stdio: ['ignore', log, log],
        detached: true,
        ...(env ? { env: { ...process.env, ...env }, cwd: spec.dir } : {}),
        ...(uid !== undefined ? { uid, gid: gid! } : {}),
      });
      live.add(proc);
      proc.unref();
      await waitUntil(spec.ready, spec.readyMs, `private ${spec.broker}`, () => proc).catch((error) => {
        throw new Error(`${(error as Error).message}; log: ${this.logTail()}`);
      });
      startMs.push(Date.now() - began);
    },
    async stop() {
      await kill9();
      spec.afterStop?.();
      rmSync(spec.dir, { recursive: true, force: true });
    },
    logTail() {
      try {
        return readFileSync(logFile, 'utf8').slice(-2_000);
      } catch {
        return '';
      }
    },
  };
}

export async function privateRedis(): Promise<PrivateBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ewf-redis-'));
  // As scripts/brokers/redis.sh: AOF on, fsync every second (a process kill loses nothing written).
  writeFileSync(
    join(dir, 'redis.conf'),
    `bind 127.0.0.1\nport ${port}\ndir ${dir}\nappendonly yes\nappendfsync everysec\nsave ""\nprotected-mode no\n`,
  );
  const broker = managed({
    broker: 'redis',
    url: `redis://127.0.0.1:${port}`,
    dir,
    port,
    command: () => ({ bin: 'redis-server', args: [join(dir, 'redis.conf')] }),
    ready: () => probe(port, 'PING\r\n', (s) => s.startsWith('+PONG')),
    readyMs: 30_000,
  });
  await broker.start();
  return broker;
}

function natsBin(): string {
  const built = join(cache, 'nats-server');
  if (existsSync(built)) {
    for (const v of readdir(built)) {
      const bin = join(built, v, 'nats-server');
      if (existsSync(bin)) return bin;
    }
  }
  return 'nats-server';
}

function readdir(dir: string): string[] {
  return execFileSync('ls', ['-1', dir], { encoding: 'utf8' }).split('\n').filter(Boolean).sort().reverse();
}

export async function privateNats(): Promise<PrivateBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ewf-nats-'));
  mkdirSync(join(dir, 'js'));
  writeFileSync(
    join(dir, 'nats.conf'),
    `listen: "127.0.0.1:${port}"\njetstream {\n  store_dir: "${join(dir, 'js')}"\n}\n`,
  );
  const bin = natsBin();
  const broker = managed({
    broker: 'nats',
    url: `nats://127.0.0.1:${port}`,
    dir,
    port,
    command: () => ({ bin, args: ['-c', join(dir, 'nats.conf')] }),
    ready: () => probe(port, undefined, (s) => /^INFO .*"jetstream":true/.test(s)),
    readyMs: 30_000,
  });
  await broker.start();
  return broker;
}

/**
 * RabbitMQ as scripts/brokers/rabbitmq.sh runs it (Debian's rabbitmq-server, no plugins), with its
 * own node name, cookie, Erlang distribution and epmd ports and data folder.
 */
export async function privateRabbitmq(): Promise<PrivateBroker> {
  const port = await freePort();
  const dist = await freePort();
  const epmd = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ewf-rabbitmq-'));
  for (const d of ['home', 'mnesia', 'log']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users.guest = true\ndisk_free_limit.absolute = 50MB\nlog.console = false\n`,
  );
  const node = `ewf${port}@localhost`;
  const env = {
    HOME: join(dir, 'home'),
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmd),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_LOGS: join(dir, 'log', 'node.log'),
    RABBITMQ_PID_FILE: join(dir, 'beam.pid'),
  };
  const broker = managed({
    broker: 'rabbitmq',
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    dir,
    port,
    command: () => ({ bin: '/usr/lib/rabbitmq/bin/rabbitmq-server', args: [], env }),
    // AMQP protocol header -> Connection.Start (a method frame, class 10 method 10)
    ready: () =>
      probe(
        port,
        'AMQP\x00\x00\x09\x01',
        (r) => r.length >= 11 && r.charCodeAt(0) === 1 && r.slice(7, 11) === '\x00\x0a\x00\x0a',
      ),
    readyMs: 90_000,
    // erl starts epmd as a daemon outside the process group
    afterStop: () => {
      try {
        execFileSync('epmd', ['-kill'], {
          env: { ...process.env, ERL_EPMD_PORT: String(epmd) },
          stdio: 'ignore',
        });
      } catch {}
    },
  });
  await broker.start();
  return broker;
}

function pgBindir(): string {
  const root = '/usr/lib/postgresql';
  return join(root, readdir(root)[0]!, 'bin');
}

export async function privatePostgres(): Promise<PrivateBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ewf-postgres-'));
  const data = join(dir, 'data');
  const bin = pgBindir();
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chmodSync(dir, 0o777);
  execFileSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--auth=trust'],
    {
      uid,
      gid,
      stdio: 'ignore',
    },
  );
  const broker = managed({
    broker: 'postgres',
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    port,
    command: () => ({
      bin: join(bin, 'postgres'),
      args: [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${dir}`,
        '-c',
        'max_connections=100',
        '-c',
        'fsync=on',
      ],
      uid,
      gid,
    }),
    // The startup packet of a real connection: an AuthenticationOk ('R') means it accepts sessions
    // (during crash recovery it answers 'E', the database system is starting up).
    ready: () => probe(port, startupPacket('postgres', 'postgres'), (s) => s.startsWith('R')),
    readyMs: 60_000,
  });
  await broker.start();
  return broker;
}

function startupPacket(user: string, database: string): string {
  const body = Buffer.concat([
    Buffer.from([0, 3, 0, 0]),
    Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'latin1'),
  ]);
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return Buffer.concat([len, body]).toString('latin1');
}

/**
 * A single node KRaft Kafka as scripts/brokers/kafka.sh runs it (same jars and settings, a smaller
 * heap), with a direct listener and `proxies` listeners advertised at proxy ports.
 */
export async function privateKafka(proxies = 2): Promise<PrivateBroker> {
  const dist = join(
    cache,
    'kafka',
    readdir(join(cache, 'kafka')).find((v) => existsSync(join(cache, 'kafka', v, '.complete')))!,
  );
  const port = await freePort();
  const controller = await freePort();
  const slots: { listen: number; upstream: Endpoint }[] = [];
  for (let i = 0; i < proxies; i++)
    slots.push({ listen: await freePort(), upstream: { host: '127.0.0.1', port: await freePort() } });
  const dir = mkdtempSync(join(tmpdir(), 'ewf-kafka-'));
  const names = slots.map((_, i) => `PROXY${i + 1}`);
  const conf = `node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:${controller}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}${slots.map((s, i) => `,${names[i]}://127.0.0.1:${s.upstream.port}`).join('')}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}${slots.map((s, i) => `,${names[i]}://127.0.0.1:${s.listen}`).join('')}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${names.map((n) => `,${n}:PLAINTEXT`).join('')}
log.dirs=${join(dir, 'data')}
num.network.threads=2
num.io.threads=4
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`;
  writeFileSync(join(dir, 'server.properties'), conf);
  writeFileSync(
    join(dir, 'log4j2.xml'),
    `<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN"><Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
<Loggers><Root level="WARN"><AppenderRef ref="out"/></Root></Loggers></Configuration>
`,
  );
  const javaOpts = [`-Dlog4j2.configurationFile=${join(dir, 'log4j2.xml')}`, `-Dkafka.logs.dir=${dir}`];
  const clusterId = execFileSync(
    'sh',
    ['-c', "head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22"],
    { encoding: 'utf8' },
  ).trim();
  execFileSync(
    'java',
    [
      '-Xmx256m',
      ...javaOpts,
      '-cp',
      `${dist}/libs/*`,
      'kafka.tools.StorageTool',
      'format',
      `--cluster-id=${clusterId}`,
      '-c',
      join(dir, 'server.properties'),
    ],
    { stdio: 'ignore' },
  );
  const probeJava = () =>
    new Promise<boolean>((resolve) => {
      const p = spawn(
        'java',
        [
          '-Xmx96m',
          '-XX:+UseSerialGC',
          '-XX:TieredStopAtLevel=1',
          `-Dlog4j2.configurationFile=${join(dir, 'log4j2.xml')}`,
          '-cp',
          `${dist}/probe:${dist}/libs/*`,
          'EventwireKafkaProbe',
          `127.0.0.1:${port}`,
        ],
        { stdio: 'ignore' },
      );
      const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code === 0);
      });
    });
  const broker = managed({
    broker: 'kafka',
    url: `kafka://127.0.0.1:${port}`,
    dir,
    port,
    proxySlots: slots,
    command: () => ({
      bin: 'java',
      args: [
        '-Xms384m',
        '-Xmx384m',
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-Djava.awt.headless=true',
        ...javaOpts,
        '-cp',
        `${dist}/libs/*`,
        'kafka.Kafka',
        join(dir, 'server.properties'),
      ],
    }),
    // a cheap TCP check first, to skip the JVM start while the port is still closed
    ready: async () => (await tcpOpen(port)) && (await probeJava()),
    readyMs: 120_000,
  });
  await broker.start();
  return broker;
}

/** True when something accepts a TCP connection on the port. */
export function tcpOpen(port: number, ms = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.on('connect', () => done(true));
    socket.on('error', () => done(false));
  });
}
