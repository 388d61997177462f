import { expect } from 'vitest';
import { waitFor } from '../../wait.ts';
import { type ConformanceTest, requires } from '../fixture.ts';

export const health: ConformanceTest = {
  number: 30,
  name: 'health',
  requires: requires.brokerStopStart,
  timeoutMs: 180_000,
  async run(fx) {
    const bus = await fx.bus();
    expect((await bus.health()).status).toBe('up');
    await fx.broker!.stop!();
    try {
      const down = await waitFor(
        async () => {
          const h = await bus.health();
          return h.status === 'down' ? h : undefined;
        },
        { timeoutMs: 30_000 },
      );
      expect(down.transport.reason).toBeTruthy();
      expect(down.transport.reason).not.toMatch(/:[^:@/\s]+@/);
    } finally {
      await fx.broker!.start!();
    }
    await waitFor(async () => (await bus.health()).status === 'up', { timeoutMs: 60_000 });
  },
};
