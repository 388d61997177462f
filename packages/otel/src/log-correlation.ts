/** Log lines that carry the active span's ids (the OpenTelemetry log-correlation fields). */
import type { LogFn, Logger } from '@eventwire/core';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';

/**
 * A logger whose entries also carry `trace_id`, `span_id` and `trace_flags` of the span active
 * when the line is written (the OpenTelemetry log-correlation fields), so that a log line found
 * by event id leads to its trace. Pass it as `createBus({ logger: withTraceContext(pino()) })`:
 * handler loggers (`ctx.logger`) then carry event id, type, group, correlation id and trace ids.
 */
export function withTraceContext(logger: Logger): Logger {
  const wrap =
    (log: LogFn): LogFn =>
    (fields, message) => {
      const sc = trace.getSpan(context.active())?.spanContext();
      if (!sc || !isSpanContextValid(sc)) return log(fields, message);
      log(
        {
          trace_id: sc.traceId,
          span_id: sc.spanId,
          trace_flags: (sc.traceFlags & 0xff).toString(16).padStart(2, '0'),
          ...fields,
        },
        message,
      );
    };
  return {
    debug: wrap(logger.debug.bind(logger)),
    info: wrap(logger.info.bind(logger)),
    warn: wrap(logger.warn.bind(logger)),
    error: wrap(logger.error.bind(logger)),
  };
}
