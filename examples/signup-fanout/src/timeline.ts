import type { Middleware } from '@eventwire/core';

/** Prints what happens as it happens, and keeps the counts for the summary. */
export function timeline() {
  const started = performance.now();
  const handled = new Map<string, number>();
  const summary = { published: 0, retried: 0, deadLettered: 0, duplicatesAbsorbed: 0 };
  const deadLetters: string[] = [];
  const at = () => `+${String(Math.round(performance.now() - started)).padStart(5)}ms`;
  const print = (who: string, what: string) => console.log(`${at()}  ${who.padEnd(20)} ${what}`);
  const user = (data: unknown) => (data as { name?: string }).name ?? '?';

  const middleware: Middleware = {
    onHandled(event, info) {
      if (info.duplicate) {
        summary.duplicatesAbsorbed++;
        print(info.group, `duplicate of ${user(event.data)}'s signup absorbed by the inbox`);
        return;
      }
      handled.set(info.group, (handled.get(info.group) ?? 0) + 1);
    },
    onRetry(event, info) {
      summary.retried++;
      print(
        info.group,
        `attempt ${info.attempt} for ${user(event.data)} failed (${(info.error as Error).message}); retry in ${info.delayMs} ms`,
      );
    },
    onDeadLetter(event, info) {
      summary.deadLettered++;
      deadLetters.push(
        `${info.group}: ${user(event?.data)} (${info.reason}: ${(info.error as Error).message})`,
      );
      print(info.group, `${user(event?.data)} dead-lettered after ${info.attempt} attempts (${info.reason})`);
    },
  };
  return { middleware, print, handled, summary, deadLetters };
}
