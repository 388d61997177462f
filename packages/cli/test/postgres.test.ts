import { randomUUID } from 'node:crypto';
import { describeBroker, POSTGRES_URL } from '../../../test/support/brokers.ts';
import { operationsTests } from './operations.ts';

// The real Postgres server is shared: every run gets topics of its own.
describeBroker('postgres', () => {
  operationsTests({ url: () => POSTGRES_URL, concurrent: true, suffix: `.cli${randomUUID().slice(0, 8)}` });
});
