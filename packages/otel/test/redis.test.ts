/**
 * The round trip across a real Redis Streams (`redis://`, EVENTWIRE_TEST_REDIS_URL).
 * Skipped when the broker is unreachable (unless EVENTWIRE_REQUIRE_BROKERS asks for it), and
 * while @eventwire/redis does not export `transportFromUrl` yet.
 */
import { describe, it } from 'vitest';
import { describeBroker, REDIS_URL } from '../../../test/support/brokers.ts';
import { defineRoundTripTests } from './round-trip.ts';

const adapter: { transportFromUrl?: unknown } = await import('@eventwire/redis');

if (typeof adapter.transportFromUrl !== 'function') {
  describe('otel round trip on redis', () => {
    it.skip('skipped: @eventwire/redis does not export transportFromUrl yet', () => {});
  });
} else {
  describeBroker('redis', () => {
    defineRoundTripTests('redis', { bus: () => ({ url: REDIS_URL }), system: 'redis' });
  });
}
