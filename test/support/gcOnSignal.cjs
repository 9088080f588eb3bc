// Test-only preload (node --expose-gc --require …): SIGUSR2 runs a full garbage collection, so a
// memory test can compare levels after GC instead of wherever V8's collector happens to be.
process.on('SIGUSR2', () => {
  if (typeof global.gc === 'function') global.gc();
});
