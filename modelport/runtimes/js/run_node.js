// modelport's `node` runtime: node run_node.js MODEL INPUT_DIR OUTPUT_DIR
// Runs every input set of INPUT_DIR/sets.json through the ONNX file MODEL with onnxruntime-node (CPU) in this
// one process, and writes OUTPUT_DIR/sets.json plus one .bin per output (modelport/runtimes/exchange.py).
// A set that fails carries its error; a model that does not load exits 1 with the reason on stderr.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node'); // found through NODE_PATH: the packages modelport installed
const { runSets, message } = require('./exchange.js');

async function main([model, inputDir, outputDir]) {
  const index = JSON.parse(fs.readFileSync(path.join(inputDir, 'sets.json'), 'utf8'));
  const start = performance.now();
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  const loadSeconds = (performance.now() - start) / 1000;
  const read = (file) => fs.readFileSync(path.join(inputDir, file));
  const write = (file, bytes) => {
    fs.mkdirSync(path.dirname(path.join(outputDir, file)), { recursive: true });
    fs.writeFileSync(path.join(outputDir, file), bytes);
  };
  const sets = await runSets(ort, session, index, read, write);
  await session.release();
  const runtime = {
    'onnxruntime-node': ort.env.versions.node,
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
  };
  const out = { kind: 'modelport-tensors', version: 1, runtime, load_seconds: loadSeconds, sets };
  fs.writeFileSync(path.join(outputDir, 'sets.json'), JSON.stringify(out, null, 1));
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`onnxruntime-node: ${message(e)}\n`);
  process.exit(1);
});
