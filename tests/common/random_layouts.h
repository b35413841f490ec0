// Random packed layouts for the attention tests: two batch rows, each of 1-3 documents with up to
// max_doc_tokens context tokens and 0-5 suffix tokens (random token ids), laid out under `options`.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "gsa/runtime/gist_layout.h"

namespace gsa::test {

std::vector<GistLayout> random_packed_rows(const GistOptions& options, int64_t max_doc_tokens, std::mt19937& rng);

}  // namespace gsa::test
