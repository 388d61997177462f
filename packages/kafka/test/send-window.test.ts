import { describe, expect, it } from 'vitest';
import { SendWindow } from '../src/clients/send-window.ts';

/** A send whose requests the test completes by hand. */
function manualSend() {
  const requests: { items: number[]; done: () => void; fail: (e: Error) => void }[] = [];
  const send = (items: number[]) =>
    new Promise<void>((done, fail) => {
      requests.push({ items, done, fail });
    });
  return { requests, send };
}

describe('SendWindow', () => {
  it('keeps at most maxInFlight requests and coalesces what arrives meanwhile', async () => {
    const { requests, send } = manualSend();
    const window = new SendWindow(send, 2);
    const calls = [[1], [2], [3, 4], [5]].map((items) => window.push(items));
    expect(requests.map((r) => r.items)).toEqual([[1], [2]]);
    requests[0]!.done();
    await calls[0];
    // [3, 4] and [5] went out together once a slot freed.
    expect(requests.map((r) => r.items)).toEqual([[1], [2], [3, 4, 5]]);
    requests[1]!.done();
    requests[2]!.done();
    await Promise.all(calls);
  });

  it('fails every caller of a failed request, and only those', async () => {
    const { requests, send } = manualSend();
    const window = new SendWindow(send, 1);
    const first = window.push([1]);
    const second = window.push([2]);
    const third = window.push([3]);
    requests[0]!.fail(new Error('broker down'));
    await expect(first).rejects.toThrow('broker down');
    expect(requests[1]!.items).toEqual([2, 3]);
    requests[1]!.done();
    await expect(second).resolves.toBeUndefined();
    await expect(third).resolves.toBeUndefined();
  });

  it('never splits one caller, and starts a new request past maxBatch', async () => {
    const { requests, send } = manualSend();
    const window = new SendWindow(send, 1, 3);
    const calls = [window.push([0]), window.push([1, 2]), window.push([3, 4]), window.push([5])];
    requests[0]!.done();
    await calls[0];
    expect(requests[1]!.items).toEqual([1, 2, 3, 4]);
    requests[1]!.done();
    await calls[2];
    expect(requests[2]!.items).toEqual([5]);
    requests[2]!.done();
    await Promise.all(calls);
  });
});
