/**
 * The round trip across a real Postgres (`postgres://`, EVENTWIRE_TEST_POSTGRES_URL).
 * Skipped when the broker is unreachable (unless EVENTWIRE_REQUIRE_BROKERS asks for it), and
 * while @eventwire/postgres does not export `transportFromUrl` yet.
 */
import { describe, it } from 'vitest';
import { describeBroker, POSTGRES_URL } from '../../../test/support/brokers.ts';
import { defineRoundTripTests } from './round-trip.ts';

const adapter: { transportFromUrl?: unknown } = await import('@eventwire/postgres');

if (typeof adapter.transportFromUrl !== 'function') {
  describe('otel round trip on postgres', () => {
    it.skip('skipped: @eventwire/postgres does not export transportFromUrl yet', () => {});
  });
} else {
  describeBroker('postgres', () => {
    defineRoundTripTests('postgres', { bus: () => ({ url: POSTGRES_URL }), system: 'postgresql' });
  });
}
