// Preloaded by `npm run bench` into the production server (node --require this dist/main.js):
// registers apikeys.bench.v1.BenchService/Empty, a handler that answers an empty response at
// once, on the server main.js builds, just before it binds. It sits behind the same interceptors
// as VerifyKey (its caller authenticates with a service token), so it measures the transport plus
// our interceptors. Nothing of it is in src/ or dist/: production never serves it.
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { join } = require('node:path');

const definition = protoLoader.loadSync(join(__dirname, 'proto', 'bench.proto'), {
  includeDirs: [join(__dirname, '..', 'proto'), join(__dirname, 'proto')],
});
const service = grpc.loadPackageDefinition(definition).apikeys.bench.v1.BenchService.service;

const bindAsync = grpc.Server.prototype.bindAsync;
grpc.Server.prototype.bindAsync = function (...args) {
  this.addService(service, { Empty: (_call, callback) => callback(null, {}) });
  return bindAsync.apply(this, args);
};
