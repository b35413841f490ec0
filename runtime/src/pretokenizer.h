// The pre-tokenizer regexes of Llama-3 and Qwen2 as a hand-written matcher, private to the runtime.
//
//   Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2:   the same with \p{N} in place of \p{N}{1,3}
//
// Contract:
// - split_pattern_for_regex maps the exact pattern string of a tokenizer.json Split pre-tokenizer to one of the
//   two; any other string throws gsa::Error "<where>: unsupported pre-tokenizer regex <pattern>; supported:
//   the Llama-3 and Qwen2 patterns".
// - split_pretokens cuts UTF-8 text into the consecutive matches of the regex, as Split with behavior Isolated
//   does with the regex engine of Hugging Face `tokenizers` (leftmost-first alternation, greedy quantifiers with
//   backtracking, Unicode classes from unicode_text.h, case-insensitive contractions including U+017F, which
//   folds to 's'). Every character matches some alternative, so the pieces cover the text exactly and are never
//   empty. Invalid UTF-8 bytes (which `tokenizers` cannot receive) count as one character each in no class: they
//   behave like punctuation.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gsa {

enum class SplitPattern { kLlama3, kQwen2 };

SplitPattern split_pattern_for_regex(const std::string& regex, const std::string& where);
const char* split_pattern_name(SplitPattern pattern);

std::vector<std::string_view> split_pretokens(std::string_view text, SplitPattern pattern);

}  // namespace gsa
