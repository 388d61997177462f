import { describe, expect, it } from 'vitest';
import { cli, fixtureConfig, parsed } from './harness.ts';

const config = ['--config', fixtureConfig];

describe('eventwire CLI: usage and errors', () => {
  it('doctor warns about the kafkajs client (a known, measured defect)', async () => {
    const out = await cli([...config, 'doctor', '--json', '--url', 'kafka://127.0.0.1:1?client=kafkajs']);
    expect(out.code).toBe(1); // nothing answers on port 1
    expect(parsed(out).warnings).toEqual([expect.stringContaining('kafkajs client loses')]);
    const plain = await cli([...config, 'doctor', '--json', '--url', 'kafka://127.0.0.1:1']);
    expect(parsed(plain).warnings).toEqual([]);
  });
  it('prints its version', async () => {
    const { version } = (await import('../package.json', { with: { type: 'json' } })).default;
    for (const flag of ['--version', '-v']) {
      const out = await cli([flag]);
      expect(out.code).toBe(0);
      expect(out.stdout).toBe(`${version}\n`);
    }
  });
  it('prints help, and help per command', async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Usage: eventwire <command>');
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const c of [
      'dlq list',
      'dlq show',
      'dlq replay',
      'dlq purge',
      'tail',
      'publish',
      'schema export',
      'schema check',
      'doctor',
    ]) {
      expect(help.stdout).toContain(c);
    }
    const dlq = await cli(['dlq', '--help']);
    expect(dlq.stdout).toContain('Usage: eventwire dlq <list|show|replay|purge>');
    const tail = await cli(['tail', '-h']);
    expect(tail.stdout).toContain('throwaway group');
  });

  it('unknown commands and options are usage errors (exit 2)', async () => {
    const command = await cli(['frobnicate']);
    expect(command.code).toBe(2);
    expect(command.stderr).toContain(
      'unknown command "frobnicate"; commands: dlq, tail, publish, schema, doctor, group',
    );
    const sub = await cli([...config, 'dlq', 'drop']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain('unknown dlq command "drop"');
    const option = await cli(['doctor', '--verbose']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Unknown option '--verbose'");
    expect(option.stderr).toContain('eventwire doctor --help');
    const json = await cli(['doctor', '--verbose', '--json']);
    expect(JSON.parse(json.stderr.split('\n')[0]!)).toMatchObject({ code: 2 });
  });

  it('missing config and missing URL are explained', async () => {
    const noConfig = await cli(['dlq', 'list'], { cwd: '/' });
    expect(noConfig.code).toBe(1);
    expect(noConfig.stderr).toContain('no config file: expected one of eventwire.config.ts');
    const noUrl = await cli([...config, 'dlq', 'list']);
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toContain('no broker URL: pass --url <url>, set EVENTWIRE_URL');
  });

  it('a bad URL names the schemes it knows', async () => {
    const result = await cli([...config, '--url', 'mqtt://user:hunter22@example.com/x', 'dlq', 'list']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown broker URL');
    expect(result.stderr).toContain('pglite:');
    expect(result.stderr).not.toContain('hunter22');
  });

  it('an unreachable broker is a clear error without credentials', async () => {
    const url = 'postgres://eventwire:s3cr3t-pw@127.0.0.1:1/eventwire';
    const list = await cli([...config, '--url', url, 'dlq', 'list']);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(
      /cannot connect to postgres:\/\/\*\*\*@127\.0\.0\.1:1\/eventwire: .*ECONNREFUSED/,
    );
    expect(list.stderr + list.stdout).not.toContain('s3cr3t-pw');

    const doctor = await cli([...config, 'doctor', '--json'], { env: { EVENTWIRE_URL: url } });
    expect(doctor.code).toBe(1);
    const out = parsed(doctor);
    expect(out).toMatchObject({ ok: false, broker: { status: 'down' } });
    expect(out.broker.url).toMatch(/^postgres:\/\/\*\*\*@127\.0\.0\.1:1\/eventwire$/);
    expect(out.broker.reason).toMatch(/ECONNREFUSED|connect/);
    expect(doctor.stdout + doctor.stderr).not.toContain('s3cr3t-pw');
    const human = await cli([...config, '--url', url, 'doctor']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      /FAIL broker postgres:\/\/\*\*\*@127\.0\.0\.1:1\/eventwire: down - .*ECONNREFUSED/,
    );
  });

  it('a config that is not one names the problem', async () => {
    const result = await cli(['--config', 'packages/cli/test/fixtures/not-a-config.ts', 'schema', 'export']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('events[0] is not an event definition');
  });
});
