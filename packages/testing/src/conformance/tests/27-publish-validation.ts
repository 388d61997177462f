import { OversizeError, ValidationError } from '@eventwire/core';
import { expect } from 'vitest';
import { capturePublishes } from '../../fault-injection.ts';
import type { ConformanceTest, Item } from '../fixture.ts';

export const publishValidation: ConformanceTest = {
  number: 27,
  name: 'publish-validation',
  timeoutMs: 60_000,
  async run(fx) {
    const Event = fx.event();
    let captured!: ReturnType<typeof capturePublishes>;
    const producer = await fx.bus({}, (t) => (captured = capturePublishes(t)));
    const publishSpy = captured.publish;
    let calls = 0;
    captured.publish = (...args) => {
      calls++;
      return publishSpy(...args);
    };
    await expect(producer.publish(Event, { n: 'one' } as unknown as Item)).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(producer.publish(Event, { n: 1.5 })).rejects.toMatchObject({ code: 'EW_VALIDATION' });
    const tooBig = { n: 1, pad: 'x'.repeat(fx.capabilities.maxMessageBytes + 1) };
    await expect(producer.publish(Event, tooBig)).rejects.toBeInstanceOf(OversizeError);
    await expect(
      producer.publishMany(Event, [{ data: { n: 1 } }, { data: { n: 'bad' } as unknown as Item }]),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(calls).toBe(0);
    expect(captured.published).toEqual([]);
  },
};
