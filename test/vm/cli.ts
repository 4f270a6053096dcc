// cli.ts: the command line of test/vm/run (see test/vm/README.md).
import { runInVm, vmUnavailableReason } from './boot';
import { prepareImage } from './image';
import { EXIT, HarnessError } from './tools';

const USAGE = `usage: test/vm/run [OPTIONS] -- CMD [ARG...]
       test/vm/run --prepare

Runs CMD as root in a qemu VM (Debian's 6.1 kernel, with device-mapper), in the caller's
directory (the project tree and the host's /usr and /etc are shared at the same paths).
Exits with CMD's exit status.

  --mem MIB            guest RAM (default 2048)
  --disk GIB           size of the scratch disk behind $VM_SCRATCH (sparse ext4; default 8;
                       0 = a tmpfs instead)
  --timeout SEC        kill the VM and fail (exit 124) after SEC seconds (default 1800)
  --boot-timeout SEC   a guest that has not started CMD by then is booted again, once
                       (default 120)
  -e, --env KEY=VALUE  extra environment for CMD (repeatable)
  --verbose            show kernel and init messages (on stderr)
  --prepare            download and build what the VM needs, print the guest kernel as
                       "RELEASE PACKAGE VERSION", boot nothing
Exit status: CMD's, or 77 when the VM cannot run here (no qemu, no busybox-static), 124 on
timeout, 125 when the harness or the guest failed, 2 for a bad command line.`;

interface Parsed {
  prepareOnly: boolean;
  memMiB: number;
  diskGiB: number;
  timeoutSec: number;
  bootTimeoutSec: number;
  env: Record<string, string>;
  verbose: boolean;
  command: string[];
}

function parseArgs(argv: string[]): Parsed {
  const parsed: Parsed = { prepareOnly: false, memMiB: 2048, diskGiB: 8, timeoutSec: 1800, bootTimeoutSec: 120, env: {}, verbose: false, command: [] };
  const number = (flag: string, value: string | undefined, min: number): number => {
    const n = Number(value);
    if (value === undefined || value === '' || !Number.isFinite(n) || n < min) throw new HarnessError(`${flag} needs a number >= ${min}\n${USAGE}`, EXIT.usage);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--':
        parsed.command = argv.slice(i + 1);
        i = argv.length;
        break;
      case '--mem': parsed.memMiB = Math.floor(number(flag, value(), 128)); break;
      case '--disk': parsed.diskGiB = number(flag, value(), 0); break;
      case '--timeout': parsed.timeoutSec = number(flag, value(), 1); break;
      case '--boot-timeout': parsed.bootTimeoutSec = number(flag, value(), 1); break;
      case '-e':
      case '--env': {
        const kv = value() ?? '';
        const eq = kv.indexOf('=');
        if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(kv.slice(0, eq))) throw new HarnessError(`${flag} needs KEY=VALUE\n${USAGE}`, EXIT.usage);
        parsed.env[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '--verbose': parsed.verbose = true; break;
      case '--prepare': parsed.prepareOnly = true; break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new HarnessError(`unknown option ${arg}\n${USAGE}`, EXIT.usage);
    }
  }
  if (!parsed.prepareOnly && parsed.command.length === 0) throw new HarnessError(`no command given\n${USAGE}`, EXIT.usage);
  return parsed;
}

function log(line: string): void {
  process.stderr.write(`test/vm/run: ${line}\n`);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.prepareOnly) {
    const unavailable = vmUnavailableReason();
    if (unavailable !== undefined) throw new HarnessError(unavailable, EXIT.unavailable);
    const { kernel } = prepareImage(log);
    process.stdout.write(`${kernel.release} ${kernel.package} ${kernel.version}\n`);
    return 0;
  }
  return runInVm({ ...args, cwd: process.cwd(), log });
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    if (err instanceof HarnessError) {
      log(err.message);
      process.exitCode = err.exitCode;
    } else {
      log(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exitCode = EXIT.harness;
    }
  },
);
