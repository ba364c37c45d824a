#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { TesseraError } from '../core/errors.ts';
import { runCommand } from './commands.ts';
import { COMMAND_HELP, USAGE } from './help.ts';
import { UsageError } from './usage-error.ts';

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === '-v' || command === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const help = COMMAND_HELP[command];
    if (!help) throw new UsageError(`unknown command "${command}"`);
    process.stdout.write(`${help}\n`);
    return 0;
  }
  return runCommand(command, rest);
}

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return String(manifest.version);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tessera: ${errorMessage(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);

function errorMessage(error: unknown): string {
  if (error instanceof TesseraError || error instanceof UsageError || error instanceof TypeError) {
    return error.message.split('\n')[0] ?? 'failed';
  }
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    return `${error.message.split('\n')[0]} (${error.code})`;
  }
  return error instanceof Error ? (error.message.split('\n')[0] ?? 'failed') : String(error);
}
