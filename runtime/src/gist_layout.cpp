#include "gsa/runtime/gist_layout.h"

#include <algorithm>

#include "gsa/runtime/error.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {
namespace {

// One token of a document while it is being built: its id and level.
struct Slot {
  int64_t token;
  int8_t level;
};

void validate_options(const GistOptions& o, const std::vector<int64_t>& gist_token_ids) {
  GSA_CHECK(o.levels >= 1 && o.levels <= 4, "gist.levels must be 1..4, got ", o.levels);
  GSA_CHECK(o.chunk >= 1, "gist.chunk must be >= 1, got ", o.chunk);
  GSA_CHECK(o.levels == 1 || o.fanout >= 2, "gist.fanout must be >= 2, got ", o.fanout);
  GSA_CHECK(o.sink >= 0, "gist.sink must be >= 0, got ", o.sink);
  GSA_CHECK(o.prev_chunks >= 0, "gist.prev_chunks must be >= 0, got ", o.prev_chunks);
  GSA_CHECK(static_cast<int64_t>(gist_token_ids.size()) >= o.levels, "need ", o.levels,
            " gist token ids, got ", gist_token_ids.size());
}

// Level-0 insertion over context[sink..] (method section 3.1).
std::vector<Slot> insert_level0(const Document& doc, const GistOptions& o, int64_t gist_id) {
  const auto& ctx = doc.context;
  const int64_t n = static_cast<int64_t>(ctx.size());
  const bool shift = o.word_aware && !doc.context_word_starts.empty();
  GSA_CHECK(doc.context_word_starts.empty() || static_cast<int64_t>(doc.context_word_starts.size()) == n,
            "context_word_starts has ", doc.context_word_starts.size(), " entries for ", n, " context tokens");
  std::vector<Slot> out;
  out.reserve(n + n / o.chunk + 2);
  const int64_t sink = std::min<int64_t>(o.sink, n);
  for (int64_t i = 0; i < sink; ++i) out.push_back({ctx[i], kRawLevel});
  if (n == 0) return out;  // an empty context gets no gist; 1..sink tokens still get the final one (reference)
  const int64_t max_shift = o.chunk / 2;
  int64_t begin = sink;
  while (true) {
    int64_t end = begin + o.chunk;  // the gist is due before ctx[end]
    if (end >= n) break;            // never in the middle loop at the very end
    if (shift && !doc.context_word_starts[end]) {
      for (int64_t j = end + 1; j <= std::min(end + max_shift, n - 1); ++j) {
        if (doc.context_word_starts[j]) {
          end = j;
          break;
        }
      }
    }
    for (int64_t i = begin; i < end; ++i) out.push_back({ctx[i], kRawLevel});
    out.push_back({gist_id, 0});
    begin = end;
  }
  for (int64_t i = begin; i < n; ++i) out.push_back({ctx[i], kRawLevel});
  out.push_back({gist_id, 0});  // the final gist closes the compressed region
  return out;
}

// Level-l insertion: after every fanout-th level-(l-1) gist (not at the very end), then a final one.
std::vector<Slot> insert_level(const std::vector<Slot>& in, int8_t l, int64_t fanout, int64_t gist_id) {
  std::vector<Slot> out;
  out.reserve(in.size() + in.size() / fanout + 2);
  int64_t seen = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    out.push_back(in[i]);
    if (in[i].level == l - 1 && ++seen % fanout == 0 && i + 1 < in.size()) out.push_back({gist_id, l});
  }
  out.push_back({gist_id, l});
  return out;
}

}  // namespace

GistLayout build_layout(const std::vector<Document>& docs, const GistOptions& options,
                        const std::vector<int64_t>& gist_token_ids) {
  validate_options(options, gist_token_ids);
  const int64_t levels = options.levels;
  GistLayout layout;
  layout.options = options;
  layout.gist_token_ids.assign(gist_token_ids.begin(), gist_token_ids.begin() + levels);
  layout.chunk.assign(levels, {});
  layout.gist_pos.assign(levels, {});
  std::vector<int32_t> gists_before(levels, 0);  // row-wide count of level-l gists so far

  for (size_t d = 0; d < docs.size(); ++d) {
    std::vector<Slot> slots = insert_level0(docs[d], options, gist_token_ids[0]);
    const bool has_gists = !slots.empty() && slots.back().level == 0;
    if (has_gists) {
      for (int8_t l = 1; l < levels; ++l) slots = insert_level(slots, l, options.fanout, gist_token_ids[l]);
    }
    const int64_t compressed = static_cast<int64_t>(slots.size());  // tokens up to the last top-level gist
    for (int64_t tok : docs[d].suffix) slots.push_back({tok, kRawLevel});

    layout.doc_start.push_back(layout.size());
    int64_t gists_in_doc = 0;
    for (int64_t i = 0; i < static_cast<int64_t>(slots.size()); ++i) {
      const Slot& s = slots[i];
      const int64_t t = layout.size();
      for (int64_t l = 0; l < levels; ++l) layout.chunk[l].push_back(gists_before[l]);
      if (s.level != kRawLevel) {
        ++gists_in_doc;
        ++gists_before[s.level];
        layout.gist_pos[s.level].push_back(t);
      }
      layout.tokens.push_back(s.token);
      layout.level.push_back(s.level);
      layout.doc.push_back(static_cast<int32_t>(d));
      layout.pos_in_doc.push_back(i);
      layout.rope_pos.push_back(i - gists_in_doc);
      layout.sink.push_back(i < options.sink && s.level == kRawLevel ? 1 : 0);  // a gist is never a sink key
      layout.suffix.push_back(!has_gists || i >= compressed ? 1 : 0);
    }
  }
  layout.doc_start.push_back(layout.size());
  return layout;
}

GistLayout build_layout(const std::vector<Document>& docs, const GistOptions& options, const Tokenizer& tokenizer) {
  GSA_CHECK(options.levels <= tokenizer.max_gist_levels(), "gist.levels = ", options.levels, " but the tokenizer has ",
            tokenizer.max_gist_levels(), " gist levels");
  std::vector<int64_t> ids;
  for (int64_t l = 0; l < options.levels; ++l) ids.push_back(tokenizer.gist_id(l));
  return build_layout(docs, options, ids);
}

GistLayout build_layout(const std::vector<Document>& docs, const GistOptions& options) {
  return build_layout(docs, options, ByteTokenizer());
}

void GistLayout::append_raw(int64_t token) {
  GSA_CHECK(num_docs() >= 1, "append_raw needs a layout with at least one document");
  const int64_t t = size();
  const int64_t last = t - 1;
  tokens.push_back(token);
  level.push_back(kRawLevel);
  doc.push_back(static_cast<int32_t>(num_docs() - 1));
  const int64_t p = t - doc_start[num_docs() - 1];
  pos_in_doc.push_back(p);
  rope_pos.push_back(last >= doc_start[num_docs() - 1] ? rope_pos[last] + 1 : 0);
  sink.push_back(p < options.sink ? 1 : 0);
  suffix.push_back(1);
  for (int64_t l = 0; l < levels(); ++l) {
    chunk[l].push_back(static_cast<int32_t>(gist_pos[l].size()));
  }
  doc_start.back() = size();
}

int64_t GistLayout::gists_in_doc(int64_t l, int64_t d) const {
  const auto& g = gist_pos[l];
  auto lo = std::lower_bound(g.begin(), g.end(), doc_start[d]);
  auto hi = std::lower_bound(g.begin(), g.end(), doc_start[d + 1]);
  return hi - lo;
}

std::vector<const GistLayout*> row_pointers(const std::vector<GistLayout>& layouts) {
  std::vector<const GistLayout*> out;
  out.reserve(layouts.size());
  for (const GistLayout& l : layouts) out.push_back(&l);
  return out;
}

std::string render_layout(const GistLayout& layout) {
  std::string out;
  out.reserve(layout.size());
  for (int64_t t = 0; t < layout.size(); ++t) {
    out.push_back(layout.level[t] == kRawLevel ? '.' : static_cast<char>('0' + layout.level[t]));
  }
  return out;
}

int64_t local_window_start(const GistLayout& layout, int64_t q) {
  const int64_t before = layout.chunk[0][q] - layout.options.prev_chunks - 1;  // gist closing the chunk before it
  int64_t start = layout.doc_start[layout.doc[q]];
  if (before >= 0) start = std::max(start, layout.gist_pos[0][before] + 1);
  return start;
}

}  // namespace gsa
