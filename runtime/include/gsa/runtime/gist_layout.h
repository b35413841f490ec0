// Gist layout: where gist tokens go in a packed sequence, and the per-token metadata every other piece
// (mask predicate, attention plan, selection, RoPE) reads. Method sections 3-4, DESIGN.md sections 4.1-4.2.
//
// Contract (one packed row = documents laid end to end, no attention across them):
// - A Document has a gisted `context` and a raw `suffix` (question, answer, generated tokens).
// - The first `sink` context tokens are raw and never chunked. From there a level-0 gist follows every
//   `chunk` raw tokens; the middle loop never inserts at the very end; a final level-0 gist always closes the
//   context. With word_aware, a gist that would precede a token that does not start a word moves forward up
//   to chunk/2 tokens to the next word start (kept at the target if none); the count restarts there.
// - Level l >= 1: after every `fanout`-th level-(l-1) gist a level-l gist (not at the very end), then a final
//   level-l gist, so the context ends "g G ..." with one final gist per level.
// - A context of 1 to `sink` tokens still gets its final gists (".0", with 2 levels ".01"), as the authors'
//   reference does whenever a document has any token; only an empty context gets none.
// - Metadata per token t: level (-1 raw), document, position in document, RoPE position (position in document
//   minus the gists of that document at or before t), sink flag (a raw token with position in document < sink;
//   a final gist inside the first `sink` positions is a gist key, not a sink key, so that no key is in two key
//   classes; the reference's positional sink would also show it to every query, which differs from us only for
//   a lower-level gist with prev_chunks = 0), suffix flag
//   (after the last top-level gist of its document; every token of a document without gists), and for every
//   level l: chunk[l][t] = number of level-l gists at positions < t, counted over the whole row (a gist belongs
//   to the chunk it closes; chunk ids are unique across documents).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {

constexpr int8_t kRawLevel = -1;

struct Document {
  std::vector<int64_t> context;             // gisted tokens
  std::vector<uint8_t> context_word_starts; // [context.size()] 1 = starts a word; empty = no shift
  std::vector<int64_t> suffix;              // raw tokens after the compressed region
};

struct GistLayout {
  GistOptions options;
  std::vector<int64_t> gist_token_ids;          // [levels] token id of a level-l gist

  std::vector<int64_t> tokens;                  // [T]
  std::vector<int8_t> level;                    // [T] kRawLevel or 0..levels-1
  std::vector<int32_t> doc;                     // [T] document index
  std::vector<int64_t> pos_in_doc;              // [T]
  std::vector<int64_t> rope_pos;                // [T]
  std::vector<uint8_t> sink;                    // [T]
  std::vector<uint8_t> suffix;                  // [T]
  std::vector<std::vector<int32_t>> chunk;      // [levels][T]

  std::vector<std::vector<int64_t>> gist_pos;   // [levels][G_l] positions of the level-l gists, ascending
  std::vector<int64_t> doc_start;               // [num_docs + 1] first position of each document, then T

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  int64_t levels() const { return options.levels; }
  int64_t num_docs() const { return static_cast<int64_t>(doc_start.size()) - 1; }
  bool is_gist(int64_t t) const { return level[t] != kRawLevel; }

  // Decode: appends one raw token to the suffix of the last document (RoPE position = last + 1).
  void append_raw(int64_t token);
  // Number of level-l gists of document d.
  int64_t gists_in_doc(int64_t l, int64_t d) const;
};

// Builds the layout of one packed row. gist_token_ids[l] is the id of a level-l gist (levels entries).
GistLayout build_layout(const std::vector<Document>& docs, const GistOptions& options,
                        const std::vector<int64_t>& gist_token_ids);

// The same, with the gist ids of `tokenizer` (a ModelTokenizer: the model config's ids) for every level.
GistLayout build_layout(const std::vector<Document>& docs, const GistOptions& options, const Tokenizer& tokenizer);

// The same, with the byte tokenizer's gist ids: for tools and tests without a model config (inspect, bench).
GistLayout build_layout(const std::vector<Document>& docs, const GistOptions& options);

// First position of the local window of query q: the start of the chunk N = prev_chunks level-0 chunks before
// q's own, clamped to q's document (the raw keys a raw or level-0 query may see start here).
int64_t local_window_start(const GistLayout& layout, int64_t q);

// The rows of a batch as the pointer list that make_attention_plan and make_token_meta take.
std::vector<const GistLayout*> row_pointers(const std::vector<GistLayout>& layouts);

// Inspect rendering: one character per token, '.' raw, '0'..'3' the gist level.
std::string render_layout(const GistLayout& layout);

}  // namespace gsa
