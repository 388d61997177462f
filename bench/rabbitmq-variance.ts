/**
 * Helper for bench/rabbitmq.bench.ts: alternates raw amqplib and adapter-only consume runs and
 * prints every run, to see the noise of a shared host.
 *   node --conditions=source bench/rabbitmq-profile.ts [events]
 */
process.argv[2] ??= '10000';
process.env.EW_BENCH_ONLY = 'consume-variance';
await import('./rabbitmq.bench.ts');
