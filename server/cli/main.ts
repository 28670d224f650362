/**
 * `vitlens`: the headless face of the language server's code. This file dispatches on the
 * command name and turns errors into exit statuses; each command is one file in commands/,
 * with its own usage lines (assembled here into the usage text).
 * Exit status: 0 success, 2 bad input (with file:line:col and key), 1 internal error.
 */
import { UsageError, type Command, type Out } from './args';
import { approx } from './commands/approx';
import { bench } from './commands/bench';
import { devices } from './commands/devices';
import { grad } from './commands/grad';
import { infer } from './commands/infer';
import { pinv } from './commands/pinv';
import { profile, PROFILE_HELP } from './commands/profile';
import { VERSION } from '../core/version';

/** The commands, in the order the usage text lists them. */
const COMMANDS: readonly Command[] = [profile, devices, bench, pinv, infer, grad, approx];

/** Options every command takes (bin/vitlens.js reads them before the command runs). */
const COMMON_HELP = `  Every command: --verbose also shows what native libraries print themselves (Dawn's limit
  warnings, the Vulkan loader), which is otherwise dropped from the terminal.
`;

const USAGE = `Usage:
${COMMANDS.map((c) => c.usage).join('\n')}

${PROFILE_HELP}
${COMMON_HELP}`;

export async function main(
  argv: string[],
  stdout: Out = (s) => process.stdout.write(s + '\n'),
  stderr: Out = (s) => process.stderr.write(s + '\n'),
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    const found = COMMANDS.find((c) => c.name === command);
    if (found) return await found.run(rest, stdout, stderr);
    switch (command) {
      case '--version':
        stdout(`vitlens ${VERSION}`);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}".`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      stderr(`vitlens: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    stderr(`vitlens: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.stdout.write('', () => process.exit(code)));
}
