// modelport's tensor exchange (modelport/runtimes/exchange.py) on the JavaScript side, shared by
// run_node.js (Node.js) and page.js (the browser): raw little-endian bytes <-> onnxruntime tensors.
// Typed arrays use the platform's byte order; every platform onnxruntime ships for is little-endian.
(function (root) {
  'use strict';

  // exchange dtype -> [onnxruntime tensor type, typed array]. float16 travels as its bits (Uint16Array),
  // bool as one byte per element (Uint8Array), int64 as BigInt64Array.
  const TYPES = {
    float32: ['float32', Float32Array],
    float16: ['float16', Uint16Array],
    float64: ['float64', Float64Array],
    int64: ['int64', BigInt64Array],
    int32: ['int32', Int32Array],
    int16: ['int16', Int16Array],
    int8: ['int8', Int8Array],
    uint8: ['uint8', Uint8Array],
    bool: ['bool', Uint8Array],
  };
  const DTYPE_OF = Object.fromEntries(Object.entries(TYPES).map(([dtype, [type]]) => [type, dtype]));

  // One tensor of sets.json and its file's bytes as an onnxruntime Tensor.
  function toTensor(ort, entry, bytes) {
    const known = TYPES[entry.dtype];
    if (!known) throw new Error(`input ${entry.name} has dtype ${entry.dtype}, which this program does not read`);
    const [type, Typed] = known;
    const copy = new Uint8Array(bytes.byteLength); // a fresh, aligned buffer
    copy.set(bytes);
    const data = new Typed(copy.buffer, 0, copy.byteLength / Typed.BYTES_PER_ELEMENT);
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (data.length !== count || copy.byteLength % Typed.BYTES_PER_ELEMENT !== 0) {
      throw new Error(`input ${entry.name}: ${bytes.byteLength} bytes do not hold ${entry.dtype} ${JSON.stringify(entry.shape)}`);
    }
    return new ort.Tensor(type, data, entry.shape);
  }

  // An output tensor as {dtype, shape, bytes}: the typed array's own bytes (float16 stays as bits).
  function fromTensor(name, tensor) {
    const dtype = DTYPE_OF[tensor.type];
    if (!dtype) throw new Error(`output ${name} has type ${tensor.type}, which modelport does not exchange`);
    const data = tensor.data;
    return { dtype, shape: Array.from(tensor.dims), bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  }

  // Feeds for one set of sets.json; readBytes(file) gives a tensor file's bytes (sync or async).
  async function feedsOf(ort, set, readBytes) {
    const feeds = {};
    for (const entry of set.tensors) feeds[entry.name] = toTensor(ort, entry, await readBytes(entry.file));
    return feeds;
  }

  // Runs every set of an input index through the session, in order. writeBytes(file, bytes) stores one
  // output file (relative to the output folder); returns the output index's sets. A set that fails
  // carries its error and the others still run; each set's seconds cover session.run alone.
  // With index.profile (a latency profile), each set runs profile.warmup times untimed, then is timed call by
  // call (performance.now(), inside this runtime) until the rule of modelport/profiling/loop.py says enough;
  // the set then carries `times` (seconds per call) and the outputs of its last call.
  async function runSets(ort, session, index, readBytes, writeBytes) {
    const sets = [];
    const profile = index.profile;
    for (const [k, set] of index.sets.entries()) {
      try {
        const feeds = await feedsOf(ort, set, readBytes);
        const times = [];
        let results;
        let block = 1; // calls per timed sample: more than one only where the clock is coarse (a page's)
        if (profile) {
          for (let i = 0; i < profile.warmup; i++) results = await session.run(feeds);
          block = await callsPerSample(() => session.run(feeds));
        }
        let total = 0;
        do {
          const start = performance.now();
          for (let i = 0; i < block; i++) results = await session.run(feeds);
          const elapsed = (performance.now() - start) / 1000;
          times.push(elapsed / block);
          total += elapsed;
        } while (profile && keepTiming(profile, times.length, total));
        const seconds = times[times.length - 1];
        const tensors = [];
        for (const [j, name] of session.outputNames.entries()) {
          const { dtype, shape, bytes } = fromTensor(name, results[name]);
          const file = `${k}/${j}.bin`;
          await writeBytes(file, bytes);
          tensors.push({ name, dtype, shape, file });
        }
        const entry = { name: set.name, tensors, seconds };
        sets.push(profile ? { ...entry, times, warmup: profile.warmup, calls_per_sample: block } : entry);
      } catch (e) {
        sets.push({ name: set.name, error: message(e) });
      }
    }
    return sets;
  }

  // Whether another timed call is due after `count` calls of `total` seconds (modelport/profiling/loop.py).
  function keepTiming(profile, count, total) {
    if (count >= profile.max_iterations || total >= profile.max_seconds) return false;
    return count < profile.min_iterations || total < profile.min_seconds;
  }

  // The smallest step performance.now() takes, in ms: about 0.0001 in Node.js, 0.1 in a page that is not
  // cross-origin isolated (browsers coarsen it against timing attacks).
  function clockStep() {
    let step = Infinity;
    for (let i = 0; i < 5; i++) {
      const a = performance.now();
      let b = performance.now();
      while (b === a) b = performance.now();
      step = Math.min(step, b - a);
    }
    return step;
  }

  // Calls per timed sample: 1 with a fine clock; with a coarse one, as many calls as take 100 clock steps,
  // so each sample's mean per call is exact to 1% (samples are then means over that many calls).
  async function callsPerSample(call) {
    const step = clockStep();
    if (step <= 0.001) return 1;
    const start = performance.now();
    let calls = 0;
    while (performance.now() - start < 100 * step && calls < 100000) {
      await call();
      calls += 1;
    }
    return Math.max(1, calls);
  }

  // The message of anything thrown, on one line, without the stack lines a page error carries.
  function message(e) {
    const lines = String((e && e.message) || e).split('\n').filter((line) => !/^\s*at /.test(line));
    return lines.join(' ').replace(/\s+/g, ' ').trim().slice(0, 500);
  }

  const api = { TYPES, toTensor, fromTensor, runSets, message };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.modelportExchange = api;
})(globalThis);
