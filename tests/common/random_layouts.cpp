#include "common/random_layouts.h"

namespace gsa::test {

std::vector<GistLayout> random_packed_rows(const GistOptions& options, int64_t max_doc_tokens, std::mt19937& rng) {
  std::vector<GistLayout> rows;
  for (int b = 0; b < 2; ++b) {
    std::vector<Document> docs;
    for (int d = 0, n = 1 + rng() % 3; d < n; ++d) {
      Document doc;
      for (int64_t i = 0, len = rng() % (max_doc_tokens + 1); i < len; ++i) doc.context.push_back(rng() % 256);
      for (int64_t i = 0, len = rng() % 6; i < len; ++i) doc.suffix.push_back(rng() % 256);
      docs.push_back(doc);
    }
    rows.push_back(build_layout(docs, options));
  }
  return rows;
}

}  // namespace gsa::test
