// Preloaded into a command under test (node --require): at exit it writes on stderr whether the
// process ended by itself, its event loop empty, or was ended by process.exit() (a bin's forced exit
// after a delay, say, because something it left open held the loop).
let forced = false;
const exit = process.exit;
process.exit = function exitProbe(code) {
  forced = true;
  return exit.call(process, code);
};
process.on('exit', () => {
  process.stderr.write(`\nexit-probe: ${forced ? 'forced' : 'natural'}\n`);
});
