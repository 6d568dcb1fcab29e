// Preloaded into every chaos node (NODE_OPTIONS=--require): on SIGUSR2 the node runs a full GC and
// prints one line `chaos-heap <heapUsed bytes> <rss bytes>`, so the runner can tell memory a node
// still holds (a leak) from pages V8 and malloc keep after a busy phase (RSS rarely goes back down).
// Test-only: nothing in Pulse listens for SIGUSR2.
const v8 = require('node:v8');
const vm = require('node:vm');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
process.on('SIGUSR2', () => {
  gc();
  gc();
  const m = process.memoryUsage();
  process.stdout.write(`chaos-heap ${m.heapUsed} ${m.rss}\n`);
});
