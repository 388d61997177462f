import { ConfigError } from './errors.ts';
import { checkNumber } from './option-checks.ts';
import { DELIVER_AT_HEADER } from './transport.ts';

/** The longest delay core accepts: about 10 years; brokers state their own, shorter, limits. */
export const MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000;

/**
 * When a delayed message may be delivered (epoch ms), from its {@link DELIVER_AT_HEADER}, or
 * undefined for an immediate one (no header, or one that does not parse).
 */
export function deliverAtOf(headers: Readonly<Record<string, unknown>>): number | undefined {
  const value = headers[DELIVER_AT_HEADER];
  if (value === undefined) return undefined;
  const at = Number(value);
  return Number.isSafeInteger(at) && at > 0 ? at : undefined;
}

/**
 * The delivery time a publish asks for (epoch ms), or undefined when it asks for none or for a
 * time already past. Throws a ConfigError naming the option for a bad value.
 */
export function requestedDeliverAt(
  where: string,
  options: { deliverAt?: Date; delayMs?: number },
  now: number,
): number | undefined {
  const { deliverAt, delayMs } = options;
  if (deliverAt !== undefined && delayMs !== undefined)
    throw new ConfigError(`${where}: give deliverAt or delayMs, not both`);
  let at: number | undefined;
  if (delayMs !== undefined) {
    checkNumber(`${where}: delayMs`, delayMs, { min: 0, max: MAX_DELAY_MS, integer: true });
    at = now + delayMs;
  } else if (deliverAt !== undefined) {
    const ms = deliverAt instanceof Date ? deliverAt.getTime() : Number.NaN;
    if (!Number.isFinite(ms)) throw new ConfigError(`${where}: deliverAt must be a valid Date`);
    if (ms - now > MAX_DELAY_MS) throw new ConfigError(`${where}: deliverAt is more than 10 years away`);
    at = Math.ceil(ms);
  }
  return at !== undefined && at > now ? at : undefined;
}
