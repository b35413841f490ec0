// Real training corpora as one stream of token ids with document starts (DESIGN.md section 3, trainer/).
//
// Contract:
// - TEXT: the UTF-8 file is one document; JSONL: every non-blank line is a JSON object whose string field
//   data.corpus.jsonl_field is one document. Both are tokenised once at load (the model's tokenizer) and each
//   document ends with the tokenizer's EOS when it has one. They are held in memory: for large corpora use
//   TOKEN_BIN.
// - TOKEN_BIN (the nanoGPT / Megatron convention): the file is little-endian uint16 or uint32 token ids
//   (data.corpus.bin_dtype), memory-mapped, never read whole; with bin_document_separator >= 0 a document ends
//   after each such id, else the file is one stream.
// - Bad files throw gsa::Error naming the file and the byte offset: a missing or empty file, a .bin size that
//   is not a multiple of the id width, an id >= model.vocab_size (reported when read), invalid UTF-8 (TEXT, or a
//   JSONL line: also the line number), a JSONL line that is not a JSON object, lacks the field or has a
//   non-string field.
// - read(begin, count) gives the ids of stream positions [begin, begin + count) and the positions p in
//   (begin, begin + count) where a document starts. Thread-compatible (const reads only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/tokenizer.h"

namespace gsa {

class TokenCorpus {
 public:
  virtual ~TokenCorpus() = default;
  virtual int64_t size() const = 0;  // tokens in the stream
  virtual void read(int64_t begin, int64_t count, std::vector<int64_t>* ids, std::vector<int64_t>* starts) const = 0;
  const std::string& path() const { return path_; }

 protected:
  explicit TokenCorpus(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

// data.source must be kText, kJsonl or kTokenBin; ids must stay below vocab_size (the model's).
std::unique_ptr<TokenCorpus> load_corpus(const DataOptions& data, const Tokenizer& tokenizer, int64_t vocab_size);

}  // namespace gsa
