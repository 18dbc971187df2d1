// modelport's `browser` runtime, inside the page: window.modelportRun(model, externalData) runs every input set
// of /inputs/sets.json through /model/<model> with onnxruntime-web (wasm) and returns the output index; each
// output tensor's bytes go to the driver through window.modelportWrite(file, base64) (run_browser.js).
'use strict';

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

function base64(bytes) {
  if (bytes.toBase64) return bytes.toBase64();
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

window.modelportRun = async function (model, externalData) {
  const { runSets } = window.modelportExchange;
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = 1; // the page is not cross-origin isolated: one thread, as most pages get
  const index = JSON.parse(new TextDecoder().decode(await fetchBytes('/inputs/sets.json')));
  const start = performance.now();
  const session = await ort.InferenceSession.create(`/model/${model}`, {
    executionProviders: ['wasm'],
    externalData: externalData.map((file) => ({ path: file, data: `/model/${file}` })),
  });
  const loadSeconds = (performance.now() - start) / 1000;
  const read = (file) => fetchBytes(`/inputs/${file}`);
  const write = (file, bytes) => window.modelportWrite(file, base64(bytes));
  const sets = await runSets(ort, session, index, read, write);
  await session.release();
  const runtime = {
    'onnxruntime-web': ort.env.versions.web, backend: 'wasm', threads: String(ort.env.wasm.numThreads),
    user_agent: navigator.userAgent,
  };
  return { kind: 'modelport-tensors', version: 1, runtime, load_seconds: loadSeconds, sets };
};
