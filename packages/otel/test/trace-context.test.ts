import { TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { creationContext, formatTraceparent } from '../src/trace-context.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

describe('traceparent without regular expressions', () => {
  it('reads trace id, span id and every flags byte', () => {
    for (const flags of ['00', '01', '0a', 'ff']) {
      const sc = creationContext({ traceparent: `00-${TRACE}-${SPAN}-${flags}` });
      expect(sc).toEqual({
        traceId: TRACE,
        spanId: SPAN,
        traceFlags: Number.parseInt(flags, 16),
        isRemote: true,
      });
    }
  });

  it('rejects what the W3C spec rejects', () => {
    const bad = [
      undefined,
      '',
      `01-${TRACE}-${SPAN}-01`, // unknown version: not read
      `00-${TRACE.toUpperCase()}-${SPAN}-01`, // upper case
      `00-${TRACE}-${SPAN.toUpperCase()}-01`,
      `00-${TRACE}-${SPAN}-0G`,
      `00-${TRACE}-${SPAN}-1`,
      `00-${TRACE}-${SPAN}-011`,
      `00-${TRACE}_${SPAN}-01`,
      `00-${TRACE}-${SPAN}_01`,
      `00_${TRACE}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`, // all-zero ids are invalid
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE.slice(1)}g-${SPAN}-01`,
      `00-${TRACE}-${SPAN.slice(1)}/-01`, // '/' sits just below '0'
      `00-${TRACE}-${SPAN.slice(1)}:-01`, // ':' just above '9'
      `00-${TRACE}-${SPAN.slice(1)}\`-01`, // '`' just below 'a'
    ];
    for (const traceparent of bad)
      expect(creationContext({ traceparent }), String(traceparent)).toBeUndefined();
  });

  it('keeps a valid tracestate and drops a malformed one', () => {
    const sc = creationContext({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'vendor=x,other=y' });
    expect(sc?.traceState?.get('vendor')).toBe('x');
    expect(sc?.traceState?.serialize()).toBe('vendor=x,other=y');
  });

  it('formats what it reads', () => {
    for (const traceFlags of [TraceFlags.NONE, TraceFlags.SAMPLED, 0x0a, 0xff]) {
      const traceparent = formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags });
      expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
      expect(creationContext({ traceparent })).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags });
    }
  });
});
