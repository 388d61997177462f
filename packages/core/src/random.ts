import { randomFillSync } from 'node:crypto';

/**
 * Random bytes served from a 64 KiB pool refilled by one getrandom call: ids and trace ids need
 * 40 random bytes per event, and a system call for each was the hottest line of publishing.
 */
const pool = Buffer.alloc(64 * 1024);
let offset = pool.length;

export function pooledRandom(bytes: number): Buffer {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const slice = pool.subarray(offset, offset + bytes);
  offset += bytes;
  return slice;
}

export function randomHex(bytes: number): string {
  return pooledRandom(bytes).toString('hex');
}
