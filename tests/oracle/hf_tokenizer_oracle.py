#!/usr/bin/env python3
"""Expected ids and texts from Hugging Face `tokenizers`, for our C++ HfTokenizer to match.

Usage: hf_tokenizer_oracle.py --out DIR     (deterministic; a few seconds)

It trains two small byte-level BPE tokenizers (vocab 2000) with `tokenizers` on generated multi-script text,
shaped like the ones Llama-3 and Qwen2 ship, and writes for each CASE in (llama3, qwen2):

  DIR/CASE/tokenizer.json         the tokenizer as tokenizers saves it, then edited as described below and
                                  reloaded, so the expectations come from exactly this file.
  DIR/CASE/tokenizer_config.json  (qwen2 only) {"bos_token": null, "eos_token": {"content": "<|im_end|>"}}
  DIR/CASE/cases.tsv              one expectation per line, tab-separated; texts are hex of their UTF-8 bytes,
                                  id lists are space-separated decimals (an empty field is an empty list/text):
    I  key  value          facts: first_free_id (1 + the largest id in the file), gist0 (id of "<gist>" in the
                           file, or -1), bos / eos (expected ids, -1 for none)
    P  text  pieces        the Split pre-tokenizer alone: hex pieces separated by spaces
    E  text  ids           encode(text, add_special_tokens=False).ids
    D  ids   text          decode(ids, skip_special_tokens=False)
    N  text  nfc           (qwen2 only) tokenizers' NFC normalizer on its own: every code point that has a
                           canonical decomposition or a non-zero combining class, alone and in 3000 random runs
                           of 1-6 of them after a base letter
    W  id    0|1           the word-start rule on decode([id]) for each non-special id: text[0].isspace() or
                           text[0] in .,;:!?-—()[]{}"'  (str.isspace, as the Python reference would test it)

  llama3: normalizer null; pre_tokenizer Sequence[Split(Llama-3 regex, Isolated), ByteLevel(use_regex=False)];
          merges rewritten in the legacy "a b" string form; ignore_merges true (as Llama-3 ships); special tokens
          <|begin_of_text|> <|end_of_text|> <|eot_id|> <|start_header_id|> <|end_header_id|> after the vocab and
          a non-special, normalized added token "@@pad@@"; no gist tokens.
  qwen2:  normalizer NFC; the Qwen2 regex; merges as [a, b] pairs; special tokens <|endoftext|> <|im_start|>
          <|im_end|> then <gist> (so its id is reused), and a normalized non-special added token "naïve" spelt
          decomposed (n a i U+0308 v e), which tokenizers matches by its NFC form after normalization.

Test strings: hand-written edge cases plus thousands of generated ones mixing Latin with accents, Cyrillic,
Greek, CJK, Arabic, Devanagari, Hangul, Thai, emoji (ZWJ sequences, skin tones, flags), digit runs of 1-7 in
several scripts, whitespace runs (tabs, newlines, CRLF, NBSP, ideographic space, NEL, U+2028), contractions
in any case ('S 'LL 'ſ), punctuation runs, special tokens inside text, and decomposed forms for NFC.
Exits 77 (ctest: Skipped) when tokenizers is missing.
"""
import argparse
import json
import os
import random
import sys
import unicodedata

try:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers import AddedToken
except ImportError as error:  # ctest reports exit code 77 as Skipped (SKIP_RETURN_CODE)
    print(f"hf_tokenizer_oracle: skipped, {error}")
    sys.exit(77)

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")
VOCAB_SIZE = 2000
WORD_BOUNDARY = ".,;:!?-\u2014()[]{}\"'"

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<gist>"]

# Character pools (all assigned in Unicode 14, so the version of every side's tables agrees).
LATIN = "abcdefghijklmnopqrstuvwxyz"
ACCENTED = "éèêëàâäáãåçñöôóòõøüûúùïîíìÿýßæœłšžčřőű"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
GREEK = "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
DEVANAGARI_CONS = "कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह"
DEVANAGARI_SIGNS = "ािीुूेैोौंः्"
HANGUL = "".join(chr(c) for c in range(0xAC00, 0xAC00 + 400, 7))
THAI = "กขคงจฉชซญดตถทนบปผพฟมยรลวสหอะาิีึืุูเแโใไ่้๊๋"
CJK = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000, 3))
DIGITS = ["0123456789", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "０１２３４５６７８９", "²³¹¼½¾", "ⅠⅡⅢⅣⅫ"]
EMOJI = ["😀", "😂", "🤖", "🚀", "❤️", "👍🏽", "🇫🇷", "🇯🇵", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈",
         "🧑🏿\u200d💻", "✌️", "☕", "🙏🏻"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\t\t", "\u00a0", "\u3000", "\u2028", "\u0085",
          "\x0b", "\x0c", "\x1c", " \t \n", "\r\n\r\n", "    \n    "]
PUNCT = ["...", "!", "?", "!?", ",", ";", ":", "--", "\u2014", "(", ")", "[", "]", "{", "}", "\"", "'", "«", "»",
         "\u201c", "\u201d", "\u2019", "<=>", "/*", "*/", "#", "@", "&&", "||", "=>", "$", "%", "^_^", "~", "`"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'Ll", "'D",
                "'\u017f", "\u2019s", "'x", "''s"]
NFC_PIECES = ["e\u0301", "a\u0308", "n\u0303", "\u1100\u1161\u11a8", "a\u0323\u0307", "a\u0307\u0323",
              "\u212b", "\u2126", "\u0958", "\uf900", "o\u0302\u0301", "\u00c5\u0301", "s\u0323\u0307",
              "\u0b47\u0b3e", "\u1e9b\u0323", "\u0344", "nai\u0308ve", "\u0301abc"]


def word(rng, pool, lo=1, hi=9):
    return "".join(rng.choice(pool) for _ in range(rng.randint(lo, hi)))


def devanagari(rng):
    return "".join(rng.choice(DEVANAGARI_CONS) + (rng.choice(DEVANAGARI_SIGNS) if rng.random() < 0.6 else "")
                   for _ in range(rng.randint(1, 5)))


def digit_run(rng):
    digits = rng.choice(DIGITS[:4]) if rng.random() < 0.85 else rng.choice(DIGITS[4:])
    return "".join(rng.choice(digits) for _ in range(rng.randint(1, 7)))


def fragment(rng, specials):
    kind = rng.random()
    if kind < 0.22:
        w = word(rng, LATIN)
        return w.capitalize() if rng.random() < 0.3 else (w.upper() if rng.random() < 0.1 else w)
    if kind < 0.30:
        return word(rng, LATIN + ACCENTED)
    if kind < 0.35:
        return word(rng, CYRILLIC)
    if kind < 0.39:
        return word(rng, GREEK)
    if kind < 0.44:
        return word(rng, CJK, 1, 6)
    if kind < 0.48:
        return word(rng, ARABIC)
    if kind < 0.52:
        return devanagari(rng)
    if kind < 0.55:
        return word(rng, HANGUL, 1, 4)
    if kind < 0.58:
        return word(rng, THAI, 1, 6)
    if kind < 0.64:
        return rng.choice(EMOJI)
    if kind < 0.72:
        return digit_run(rng)
    if kind < 0.82:
        return rng.choice(PUNCT)
    if kind < 0.90:
        return rng.choice(CONTRACTIONS)
    if kind < 0.95:
        return rng.choice(NFC_PIECES)
    return rng.choice(specials) if specials else " "


def sentence(rng, specials, n_lo=1, n_hi=14):
    parts = []
    for _ in range(rng.randint(n_lo, n_hi)):
        parts.append(fragment(rng, specials))
        r = rng.random()
        if r < 0.55:
            parts.append(" ")
        elif r < 0.75:
            parts.append(rng.choice(SPACES))
    return "".join(parts)


EDGE_CASES = [
    "", " ", "  ", "\n", "\r\n", "\t", "a", "A", "Hello world", "Hello  world", "Hello   world ", "   leading",
    "trailing   ", "a\n\nb", "a \n b", "a\r\n\r\nb", " \r\n ", "x  \n  y", "'s", "'S", "don't", "DON'T", "I'LL",
    "she'd've", "'ſ'ſ", "it's 'twas", "''", "'", "1", "12", "123", "1234", "1234567", "3.14159", "1,000,000",
    "٣٤٥٦", "१२३४", "１２３４", "x²", "Ⅻ", "½", "...", "!!!???", "--", "—", " —", "(a)", "[b]", "{c}", "\"q\"",
    "«ab»", "👨\u200d👩\u200d👧", "🇫🇷🇯🇵", "👍🏽", "e\u0301", "\u212b", "nai\u0308ve", "naïve", "naïveté",
    "<|begin_of_text|>Hi<|eot_id|>", "<|im_start|>user\nhi<|im_end|>", "a<gist>b", "<gist><gist>", "<|endoftext|>",
    "@@pad@@", "x@@pad@@y", "<|eot_id", "<|eot_id|", "\u3000\u3000a", "a\u00a0b", "a\u0085b", "a\u0085\u0085b",
    "a\x1c\x1cb", "tab\there", "CRLF\r\nline", "\r\r\r", "\n \n \n", "x\u2028y", "\x0bz", "a \t\n b",
    "The quick brown fox jumps over the lazy dog.", "Привет, мир!", "Γειά σου κόσμε", "你好，世界！",
    "مرحبا بالعالم", "नमस्ते दुनिया", "안녕하세요", "สวัสดีชาวโลก",
]


def corpus(rng):
    return [sentence(rng, [], 4, 30) for _ in range(6000)]


def train(pattern, nfc):
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(random.Random(1)), trainer)
    return tok


def has_nfc_data(ch):
    """A non-zero combining class or a canonical (not compatibility) decomposition."""
    decomposition = unicodedata.decomposition(ch)
    return unicodedata.combining(ch) != 0 or (decomposition != "" and not decomposition.startswith("<"))


def hexs(text):
    return text.encode("utf-8").hex()


def ids_field(ids):
    return " ".join(str(i) for i in ids)


def write_case(out_dir, name, tok, json_edit, specials, normalized_token, config):
    tok.add_special_tokens(specials)
    tok.add_tokens([AddedToken(normalized_token, special=False, normalized=True)])
    spec = json.loads(tok.to_str())
    json_edit(spec)
    text = json.dumps(spec, ensure_ascii=False, indent=1)
    tok = Tokenizer.from_str(text)  # the expectations come from the file as written
    case_dir = os.path.join(out_dir, name)
    os.makedirs(case_dir, exist_ok=True)
    with open(os.path.join(case_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(text)
    if config is not None:
        with open(os.path.join(case_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f)

    vocab = tok.get_vocab(with_added_tokens=True)
    special_ids = {vocab[s] for s in specials}
    lines = [f"I\tfirst_free_id\t{max(vocab.values()) + 1}", f"I\tgist0\t{vocab.get('<gist>', -1)}"]
    bos = next((vocab[s] for s in ["<|begin_of_text|>", "<s>"] if s in vocab), -1)
    eos = vocab["<|im_end|>"] if config is not None else next(
        (vocab[s] for s in ["<|end_of_text|>", "<|endoftext|>", "</s>"] if s in vocab), -1)
    lines += [f"I\tbos\t{bos}", f"I\teos\t{eos}"]

    rng = random.Random(2)
    # Gist names are special tokens for us even when the file lacks them (they are added), not for tokenizers.
    edge = [s for s in EDGE_CASES if "<gist>" in vocab or "<gist>" not in s]
    strings = edge + [sentence(rng, specials) for _ in range(3000)]
    strings += [sentence(rng, specials, 20, 60) for _ in range(100)]
    splitter = pre_tokenizers.Split(  # the Split step alone gives the regex pieces
       Regex(LLAMA3_REGEX if name == "llama3" else QWEN2_REGEX), behavior="isolated")
    encodings = []
    for s in strings:
        pieces = [p for p, _ in splitter.pre_tokenize_str(s)]
        lines.append(f"P\t{hexs(s)}\t{' '.join(hexs(p) for p in pieces)}")
        ids = tok.encode(s, add_special_tokens=False).ids
        encodings.append(ids)
        lines.append(f"E\t{hexs(s)}\t{ids_field(ids)}")
    # Decodes: whole encodings, cut encodings (partial UTF-8 at the ends) and random id lists over the vocab.
    all_ids = sorted(vocab.values())
    decode_lists = [ids for ids in encodings[:500]]
    for ids in encodings[500:1500]:
        if len(ids) > 1:
            a = rng.randrange(len(ids))
            b = rng.randrange(a, len(ids) + 1)
            decode_lists.append(ids[a:b])
    decode_lists += [[rng.choice(all_ids) for _ in range(rng.randint(1, 20))] for _ in range(1000)]
    for ids in decode_lists:
        lines.append(f"D\t{ids_field(ids)}\t{hexs(tok.decode(ids, skip_special_tokens=False))}")
    if name == "qwen2":
        nfc = normalizers.NFC()
        marks = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and has_nfc_data(chr(c))]
        texts = marks + ["".join([rng.choice("aeouAEOUsSzn\u1100\uac00")] + rng.choices(marks, k=rng.randint(1, 6)))
                         for _ in range(3000)]
        for t in texts:
            lines.append(f"N\t{hexs(t)}\t{hexs(nfc.normalize_str(t))}")
    for i in all_ids:
        if i in special_ids:
            continue
        t = tok.decode([i], skip_special_tokens=False)
        starts = bool(t) and (t[0].isspace() or t[0] in WORD_BOUNDARY)
        lines.append(f"W\t{i}\t{int(starts)}")
    with open(os.path.join(case_dir, "cases.tsv"), "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    counts = {k: sum(1 for line in lines if line.startswith(k + "\t")) for k in "PEDWN"}
    print(f"hf_tokenizer_oracle: {name}: {counts['E']} encodes, {counts['D']} decodes, {counts['W']} word starts, "
          f"{counts['N']} NFC texts, "
          f"vocab {len(vocab)}")


def llama3_edit(spec):
    spec["model"]["ignore_merges"] = True
    spec["model"]["merges"] = [f"{a} {b}" for a, b in spec["model"]["merges"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    llama3 = train(LLAMA3_REGEX, nfc=False)
    write_case(args.out, "llama3", llama3, llama3_edit, LLAMA3_SPECIALS, "@@pad@@", None)
    qwen2 = train(QWEN2_REGEX, nfc=True)
    write_case(args.out, "qwen2", qwen2, lambda spec: None, QWEN2_SPECIALS, "nai\u0308ve",
               {"bos_token": None, "eos_token": {"content": "<|im_end|>"}})


if __name__ == "__main__":
    main()
