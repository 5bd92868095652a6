export async function main(argv: string[]): Promise<number> {
  process.stdout.write(`weldr: not yet implemented (${argv.join(' ')})\n`);
  return 1;
}
