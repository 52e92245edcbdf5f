/**
 * jest's node environment with the host's typed-array constructors. onnxruntime-node's native
 * code returns outputs made in the host realm, and onnxruntime-common (loaded inside jest's vm
 * context) checks them with `instanceof Float32Array` against the context's own constructor,
 * which fails ("A float32 tensor's data must be type of function Float32Array()"). jest already
 * does the same for Uint8Array and ArrayBuffer. Only test files that run onnxruntime in the
 * jest process itself opt in, with a @jest-environment docblock.
 */
const { TestEnvironment } = require('jest-environment-node');

const TYPED = ['Int8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'];

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
