// Preloaded by `npm run bench` into the production server (node --require this dist/main.js):
// registers /apikeys.v1.VerifyService/Empty (bench/proto/bench.proto), a handler that answers an
// empty response at once, on the server main.js builds, just before it binds. Its path puts it
// behind the same interceptors as VerifyKey, with the same access-log policy, and its caller
// authenticates with a service token: it measures the transport plus our interceptors. Nothing of
// it is in src/ or dist/: production never serves it.
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { join } = require('node:path');

const definition = protoLoader.loadSync(join(__dirname, 'proto', 'bench.proto'));
const service = grpc.loadPackageDefinition(definition).apikeys.v1.VerifyService.service;

const bindAsync = grpc.Server.prototype.bindAsync;
grpc.Server.prototype.bindAsync = function (...args) {
  this.addService(service, { Empty: (_call, callback) => callback(null, {}) });
  return bindAsync.apply(this, args);
};
