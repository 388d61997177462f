import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { expect, it } from 'vitest';
import { describeBroker, POSTGRES_URL } from '../support/brokers.ts';

describeBroker('postgres', () => {
  it('inserts and selects a row, and delivers a LISTEN/NOTIFY message', async () => {
    const suffix = randomUUID().replaceAll('-', '');
    const body = `hello ${suffix}`;
    const writer = new pg.Client({ connectionString: POSTGRES_URL });
    const listener = new pg.Client({ connectionString: POSTGRES_URL });
    await writer.connect();
    await listener.connect();
    try {
      const table = `smoke_${suffix}`;
      await writer.query(`create table ${table} (id bigserial primary key, body text not null)`);
      try {
        await writer.query(`insert into ${table} (body) values ($1)`, [body]);
        const { rows } = await writer.query(`select body from ${table}`);
        expect(rows).toEqual([{ body }]);
      } finally {
        await writer.query(`drop table ${table}`);
      }

      const channel = `smoke_${suffix}`;
      await listener.query(`listen ${channel}`);
      const received = new Promise<string | undefined>((resolve) => {
        listener.on('notification', (n) => {
          if (n.channel === channel) resolve(n.payload);
        });
      });
      await writer.query('select pg_notify($1, $2)', [channel, body]);
      expect(await received).toBe(body);
    } finally {
      await Promise.allSettled([writer.end(), listener.end()]);
    }
  });
});
