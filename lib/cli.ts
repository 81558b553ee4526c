#!/usr/bin/env node
/** The `unigap` command. `unigap info` prints the backend report. */
import { backendInfo } from './index.js';

const [cmd] = process.argv.slice(2);
if (cmd === 'info' || cmd === undefined) {
  console.log(JSON.stringify(backendInfo(), null, 2));
} else if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
  console.log('usage: unigap info');
} else {
  console.error(`unigap: unknown command '${cmd}' (try: unigap --help)`);
  process.exit(2);
}
