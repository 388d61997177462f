/**
 * The real brokers that integration, smoke and conformance tests talk to (see docs/brokers.md).
 *
 * URLs: `EVENTWIRE_TEST_<BROKER>_URL` (POSTGRES, REDIS, RABBITMQ, NATS, KAFKA, SNS_SQS), else the
 * default from scripts/brokers/urls.sh, the single source of truth that `brokers.sh` binds to; this
 * module parses its defaults rather than repeating them.
 *
 * Unreachable broker: the tests of `describeBroker(name, …)` are skipped with a message naming it,
 * unless `EVENTWIRE_REQUIRE_BROKERS` is `all` or a comma list containing the name: then they fail.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { beforeAll, beforeEach, describe } from 'vitest';

export const BROKER_NAMES = ['postgres', 'redis', 'rabbitmq', 'nats', 'kafka', 'sns-sqs'] as const;
export type BrokerName = (typeof BROKER_NAMES)[number];

const brokersScript = fileURLToPath(new URL('../../scripts/brokers/brokers.sh', import.meta.url));
const urlsScript = fileURLToPath(new URL('../../scripts/brokers/urls.sh', import.meta.url));

/** `sns-sqs` -> `EVENTWIRE_TEST_SNS_SQS_URL` */
export function brokerUrlVariable(name: BrokerName): string {
  return `EVENTWIRE_TEST_${name.replace('-', '_').toUpperCase()}_URL`;
}

function parseDefaults(): Record<BrokerName, string> {
  const text = readFileSync(urlsScript, 'utf8');
  const found: Partial<Record<BrokerName, string>> = {};
  for (const name of BROKER_NAMES) {
    const variable = brokerUrlVariable(name);
    const line = text.split('\n').find((l) => l.startsWith(`export ${variable}=`));
    const match = line?.match(/^export (\w+)="\$\{(\w+):-(.+)\}"\s*$/);
    if (!match || match[1] !== variable || match[2] !== variable) {
      throw new Error(`${urlsScript}: no line of the form export ${variable}="\${${variable}:-URL}"`);
    }
    found[name] = match[3]!;
  }
  return found as Record<BrokerName, string>;
}

/** The local brokers' URLs, as scripts/brokers/urls.sh defines them. */
export const defaultBrokerUrls: Readonly<Record<BrokerName, string>> = Object.freeze(parseDefaults());

/** The URL tests use for a broker: its `EVENTWIRE_TEST_<BROKER>_URL`, else the default. */
export function brokerUrl(name: BrokerName): string {
  return process.env[brokerUrlVariable(name)] || defaultBrokerUrls[name];
}

export const brokerUrls: Readonly<Record<BrokerName, string>> = Object.freeze(
  Object.fromEntries(BROKER_NAMES.map((n) => [n, brokerUrl(n)])) as Record<BrokerName, string>,
);
export const POSTGRES_URL = brokerUrls.postgres;
export const REDIS_URL = brokerUrls.redis;
export const RABBITMQ_URL = brokerUrls.rabbitmq;
export const NATS_URL = brokerUrls.nats;
export const KAFKA_URL = brokerUrls.kafka;
export const SNS_SQS_URL = brokerUrls['sns-sqs'];

/** `kafka://h1:9092,h2:9092` -> `['h1:9092', 'h2:9092']` (what kafkajs calls brokers). */
export function kafkaBrokers(url: string = KAFKA_URL): string[] {
  return url
    .replace(/^kafka:\/\//, '')
    .replace(/[/?].*$/, '')
    .split(',')
    .filter(Boolean);
}

/** `sns-sqs://us-east-1?endpoint=http://127.0.0.1:54566` -> region and endpoint for the AWS SDK. */
export function snsSqsConfig(url: string = SNS_SQS_URL): { region: string; endpoint?: string } {
  const parsed = new URL(url);
  const endpoint = parsed.searchParams.get('endpoint') ?? undefined;
  return { region: parsed.hostname || 'us-east-1', ...(endpoint ? { endpoint } : {}) };
}

function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : defaultPort,
  };
}

/**
 * Opens a TCP connection, writes `hello` (if any) and resolves true once `accept` likes the bytes
 * received so far; false on refusal, close, error or deadline.
 */
function tcpProbe(
  host: string,
  port: number,
  hello: Buffer | undefined,
  accept: (received: Buffer) => boolean,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => {
      if (hello) socket.write(hello);
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (accept(received)) done(true);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** Kafka ApiVersions v0 request (api key 18) with correlation id 0x45570001. */
function kafkaApiVersionsRequest(): Buffer {
  const clientId = Buffer.from('eventwire-probe');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
  body.writeInt16BE(18, 0);
  body.writeInt16BE(0, 2);
  body.writeInt32BE(0x45570001, 4);
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length, 0);
  return Buffer.concat([size, body]);
}

/**
 * True when the broker answers a protocol round trip within `timeoutMs`: postgres SSLRequest,
 * redis PING, AMQP protocol header -> Connection.Start, NATS INFO, Kafka ApiVersions, SQS ListQueues.
 */
export async function brokerAvailable(
  name: BrokerName,
  // moto answers slowly while it holds thousands of in-flight messages
  timeoutMs = name === 'sns-sqs' ? 10_000 : 3_000,
): Promise<boolean> {
  const url = brokerUrl(name);
  try {
    switch (name) {
      case 'postgres': {
        const { host, port } = hostPort(url, 5432);
        const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
        return await tcpProbe(host, port, sslRequest, (b) => b[0] === 0x4e || b[0] === 0x53, timeoutMs);
      }
      case 'redis': {
        const { host, port } = hostPort(url, 6379);
        const ok = (b: Buffer) => /^(\+PONG|-NOAUTH)/.test(b.toString('latin1'));
        return await tcpProbe(host, port, Buffer.from('PING\r\n'), ok, timeoutMs);
      }
      case 'rabbitmq': {
        const { host, port } = hostPort(url, url.startsWith('amqps:') ? 5671 : 5672);
        const header = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');
        // Method frame on channel 0, class 10 (connection) method 10 (start).
        const ok = (b: Buffer) =>
          b.length >= 11 && b[0] === 1 && b.readUInt16BE(7) === 10 && b.readUInt16BE(9) === 10;
        return await tcpProbe(host, port, header, ok, timeoutMs);
      }
      case 'nats': {
        const { host, port } = hostPort(url.split(',')[0]!, 4222);
        return await tcpProbe(
          host,
          port,
          undefined,
          (b) => b.toString('latin1').startsWith('INFO '),
          timeoutMs,
        );
      }
      case 'kafka': {
        const [first] = kafkaBrokers(url);
        const { host, port } = hostPort(`kafka://${first}`, 9092);
        const ok = (b: Buffer) => b.length >= 8 && b.readInt32BE(4) === 0x45570001;
        return await tcpProbe(host, port, kafkaApiVersionsRequest(), ok, timeoutMs);
      }
      case 'sns-sqs': {
        const { region, endpoint } = snsSqsConfig(url);
        const target = endpoint ?? `https://sqs.${region}.amazonaws.com/`;
        const response = await fetch(target, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            // moto routes by the credential scope; it does not check the signature.
            authorization: `AWS4-HMAC-SHA256 Credential=test/20240101/${region}/sqs/aws4_request, SignedHeaders=host, Signature=0`,
          },
          body: 'Action=ListQueues&QueueNamePrefix=eventwire-probe-&Version=2012-11-05',
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await response.text();
        return response.ok && text.includes('ListQueues');
      }
    }
  } catch {
    return false;
  }
}

/** True when `EVENTWIRE_REQUIRE_BROKERS` is `all` or a comma list that names the broker. */
export function brokerRequired(name: BrokerName): boolean {
  const wanted = (process.env.EVENTWIRE_REQUIRE_BROKERS ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  return wanted.includes('all') || wanted.includes(name);
}

function unreachableMessage(name: BrokerName): string {
  return (
    `${name} broker unreachable at ${brokerUrl(name)} ` +
    `(start it with \`pnpm brokers:up ${name}\`, or set ${brokerUrlVariable(name)})`
  );
}

const availability = new Map<BrokerName, Promise<boolean>>();

/**
 * Resolves when the broker is reachable. Otherwise throws if it is required (see
 * `EVENTWIRE_REQUIRE_BROKERS`), or resolves false so that the caller can skip.
 */
export async function requireBroker(name: BrokerName): Promise<boolean> {
  let check = availability.get(name);
  if (!check) {
    check = brokerAvailable(name);
    availability.set(name, check);
  }
  if (await check) return true;
  availability.delete(name); // ask again next time: it may have been started meanwhile
  if (brokerRequired(name))
    throw new Error(`${unreachableMessage(name)}; EVENTWIRE_REQUIRE_BROKERS requires it`);
  return false;
}

/**
 * `describe` for tests that need a real broker: when it is unreachable they are skipped with a
 * message naming it, or fail when `EVENTWIRE_REQUIRE_BROKERS` requires it.
 */
export function describeBroker(name: BrokerName, fn: () => void): void {
  describe(`[${name}] ${brokerUrl(name)}`, () => {
    let available = false;
    beforeAll(async () => {
      available = await requireBroker(name);
      if (!available) console.warn(`skipping ${name} tests: ${unreachableMessage(name)}`);
    });
    beforeEach((ctx) => {
      if (!available) ctx.skip(`skipped: ${unreachableMessage(name)}`);
    });
    fn();
  });
}

function brokersSh(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [brokersScript, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`brokers.sh ${args.join(' ')} failed (${error.message}):\n${stdout}${stderr}`));
      } else {
        resolve();
      }
    });
  });
}

/** Stops and starts a local broker keeping its data; resolves once it serves again. */
export function restartBroker(name: BrokerName): Promise<void> {
  return brokersSh('restart', name);
}

/** Stops a local broker (data kept). */
export function stopBroker(name: BrokerName): Promise<void> {
  return brokersSh('down', name);
}

/** Starts a local broker; resolves once it serves. */
export function startBroker(name: BrokerName): Promise<void> {
  return brokersSh('up', name);
}

/**
 * Toxiproxy's HTTP API, the TCP proxy of the fault suite (test/faults; it is not a broker, so it
 * is not in BROKER_NAMES): `EVENTWIRE_TEST_TOXIPROXY_URL`, else the default in urls.sh.
 */
export function toxiproxyUrl(): string {
  const variable = 'EVENTWIRE_TEST_TOXIPROXY_URL';
  if (process.env[variable]) return process.env[variable]!;
  const line = readFileSync(urlsScript, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`export ${variable}=`));
  const match = line?.match(/^export (\w+)="\$\{(\w+):-(.+)\}"\s*$/);
  if (!match) throw new Error(`${urlsScript}: no line of the form export ${variable}="\${${variable}:-URL}"`);
  return match[3]!;
}

/**
 * Resolves true when Toxiproxy answers `GET /version` within 3 s. Otherwise throws when
 * `EVENTWIRE_REQUIRE_BROKERS` is `all` or names `toxiproxy`, or resolves false (the caller skips).
 */
export async function requireToxiproxy(): Promise<boolean> {
  const url = toxiproxyUrl();
  const up = await fetch(`${url}/version`, { signal: AbortSignal.timeout(3_000) })
    .then((r) => r.ok)
    .catch(() => false);
  if (up) return true;
  const wanted = (process.env.EVENTWIRE_REQUIRE_BROKERS ?? '').split(',').map((s) => s.trim().toLowerCase());
  const message = `toxiproxy unreachable at ${url} (start it with \`pnpm brokers:up toxiproxy\`, or set EVENTWIRE_TEST_TOXIPROXY_URL)`;
  if (wanted.includes('all') || wanted.includes('toxiproxy'))
    throw new Error(`${message}; EVENTWIRE_REQUIRE_BROKERS requires it`);
  console.warn(`skipping: ${message}`);
  return false;
}
