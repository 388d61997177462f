import { defineEvent } from '@eventwire/core';
import { z } from 'zod';

/** A user finished signing up. Keyed by user id, so one user's events keep their order. */
export const UserSignedUp = defineEvent({
  type: 'user.signed_up',
  version: 1,
  schema: z.object({
    userId: z.string(),
    email: z.email(),
    name: z.string(),
    plan: z.enum(['free', 'team', 'enterprise']),
  }),
  key: (user) => user.userId,
});
