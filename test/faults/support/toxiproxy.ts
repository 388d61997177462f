/**
 * A small client of Toxiproxy's HTTP API (https://github.com/Shopify/toxiproxy#http-api), the proxy
 * `scripts/brokers/toxiproxy.sh` runs. Written on `fetch` rather than `toxiproxy-node-client`: the
 * five calls the fault suite needs are a few lines each, and the suite adds no dependency.
 *
 * Every call has a deadline (5 s); a failed call throws with the API's answer.
 */

export interface Endpoint {
  host: string;
  port: number;
}

export type ToxicType =
  | 'latency'
  | 'bandwidth'
  | 'slow_close'
  | 'timeout'
  | 'reset_peer'
  | 'slicer'
  | 'limit_data';

export interface Toxic {
  name: string;
  type: ToxicType;
  /** `downstream`: broker -> client; `upstream`: client -> broker. */
  stream: 'upstream' | 'downstream';
  /** Probability (0-1) that a connection gets the toxic. Default 1. */
  toxicity?: number;
  attributes: Record<string, number>;
}

const API_TIMEOUT_MS = 5_000;

export class ToxiproxyApi {
  readonly url: string;

  constructor(url: string) {
    this.url = url.replace(/\/+$/, '');
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`toxiproxy ${method} ${path}: HTTP ${response.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async version(): Promise<string> {
    const v = await this.request<{ version: string } | string>('GET', '/version');
    return typeof v === 'string' ? v : v.version;
  }

  /**
   * A new proxy on 127.0.0.1 in front of `upstream`, on `listenPort` (default 0: a port the kernel
   * picks; a fixed one when the broker must advertise it, as Kafka's listeners).
   */
  async createProxy(name: string, upstream: Endpoint, listenPort = 0): Promise<FaultProxy> {
    const created = await this.request<{ listen: string }>('POST', '/proxies', {
      name,
      listen: `127.0.0.1:${listenPort}`,
      upstream: `${upstream.host}:${upstream.port}`,
      enabled: true,
    });
    const port = Number(created.listen.slice(created.listen.lastIndexOf(':') + 1));
    if (!Number.isInteger(port) || port <= 0)
      throw new Error(`toxiproxy: unexpected listen ${created.listen}`);
    return new FaultProxy(this, name, { host: '127.0.0.1', port });
  }

  /** Names of the proxies that exist. */
  async proxies(): Promise<string[]> {
    return Object.keys(await this.request<Record<string, unknown>>('GET', '/proxies'));
  }
}

export class FaultProxy {
  readonly api: ToxiproxyApi;
  readonly name: string;
  /** Where clients connect to go through the proxy. */
  readonly listen: Endpoint;
  readonly #toxics = new Set<string>();

  constructor(api: ToxiproxyApi, name: string, listen: Endpoint) {
    this.api = api;
    this.name = name;
    this.listen = listen;
  }

  async addToxic(toxic: Toxic): Promise<void> {
    await this.api.request('POST', `/proxies/${this.name}/toxics`, { toxicity: 1, ...toxic });
    this.#toxics.add(toxic.name);
  }

  async removeToxic(name: string): Promise<void> {
    await this.api.request('DELETE', `/proxies/${this.name}/toxics/${name}`);
    this.#toxics.delete(name);
  }

  /** Adds the same toxic in both directions (names `<name>-up`, `<name>-down`). */
  async addBoth(name: string, type: ToxicType, attributes: Record<string, number>): Promise<void> {
    await Promise.all([
      this.addToxic({ name: `${name}-up`, type, stream: 'upstream', attributes }),
      this.addToxic({ name: `${name}-down`, type, stream: 'downstream', attributes }),
    ]);
  }

  async removeBoth(name: string): Promise<void> {
    await Promise.all([this.removeToxic(`${name}-up`), this.removeToxic(`${name}-down`)]);
  }

  /** Removes every toxic this object added. */
  async heal(): Promise<void> {
    await Promise.all([...this.#toxics].map((name) => this.removeToxic(name)));
  }

  /** Disabled: every connection is closed and new ones are refused. */
  async setEnabled(enabled: boolean): Promise<void> {
    await this.api.request('POST', `/proxies/${this.name}`, { enabled });
  }

  /** Deletes the proxy, which closes every connection through it. */
  async delete(): Promise<void> {
    await this.api.request('DELETE', `/proxies/${this.name}`);
  }
}
