#include "gsa/trainer/corpus.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/json_reader.h"
#include "gsa/runtime/unicode_text.h"

namespace gsa {
namespace {

// Byte offset of the first invalid UTF-8 byte of text, or npos.
size_t first_invalid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const unicode::DecodedChar c = unicode::decode_utf8_at(text, pos);
    if (c.code == unicode::kInvalidByte) return pos;
    pos += c.length;
  }
  return std::string_view::npos;
}

// Documents tokenised in memory (TEXT, JSONL).
class InMemoryCorpus final : public TokenCorpus {
 public:
  explicit InMemoryCorpus(std::string path) : TokenCorpus(std::move(path)) {}

  void add_document(const std::vector<int64_t>& ids, const Tokenizer& tokenizer) {
    if (ids.empty()) return;
    starts_.push_back(static_cast<int64_t>(ids_.size()));
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    if (tokenizer.eos_id()) ids_.push_back(*tokenizer.eos_id());
  }
  int64_t size() const override { return static_cast<int64_t>(ids_.size()); }
  void read(int64_t begin, int64_t count, std::vector<int64_t>* ids, std::vector<int64_t>* starts) const override {
    GSA_CHECK(begin >= 0 && count >= 0 && begin + count <= size(), path(), ": read [", begin, ", ", begin + count,
              ") outside the ", size(), " tokens");
    ids->assign(ids_.begin() + begin, ids_.begin() + begin + count);
    starts->clear();
    for (auto it = std::upper_bound(starts_.begin(), starts_.end(), begin);
         it != starts_.end() && *it < begin + count; ++it) {
      starts->push_back(*it);
    }
  }

 private:
  std::vector<int64_t> ids_;
  std::vector<int64_t> starts_;  // ascending
};

std::unique_ptr<TokenCorpus> load_text(const std::string& path, const Tokenizer& tokenizer) {
  const std::string text = read_file(path);
  GSA_CHECK(!text.empty(), path, ": the text file is empty");
  const size_t bad = first_invalid_utf8(text);
  GSA_CHECK(bad == std::string::npos, path, ": invalid UTF-8 at byte offset ", bad);
  auto corpus = std::make_unique<InMemoryCorpus>(path);
  corpus->add_document(tokenizer.encode(text), tokenizer);
  return corpus;
}

std::unique_ptr<TokenCorpus> load_jsonl(const std::string& path, const std::string& field, const Tokenizer& tokenizer) {
  const std::string text = read_file(path);
  auto corpus = std::make_unique<InMemoryCorpus>(path);
  size_t line_start = 0;
  for (int64_t line = 1; line_start < text.size(); ++line) {
    size_t end = text.find('\n', line_start);
    if (end == std::string::npos) end = text.size();
    const std::string_view row(text.data() + line_start, end - line_start);
    const std::string where = str_cat(path, ": line ", line, " (byte offset ", line_start, ")");
    if (row.find_first_not_of(" \t\r") != std::string_view::npos) {
      const size_t bad = first_invalid_utf8(row);
      GSA_CHECK(bad == std::string_view::npos, path, ": line ", line, ": invalid UTF-8 at byte offset ",
                line_start + bad);
      json::Value value;
      try {
        value = json::parse_json(row);
      } catch (const Error& e) {
        throw Error(str_cat(where, ": ", e.what()));
      }
      GSA_CHECK(value.is_object(), where, ": a JSON ", json::kind_name(value.kind), ", expected an object with a \"",
                field, "\" field");
      const json::Value* doc = value.find(field);
      GSA_CHECK(doc != nullptr, where, ": no \"", field, "\" field");
      GSA_CHECK(doc->is_string(), where, ": field \"", field, "\" is a ", json::kind_name(doc->kind),
                ", not a string");
      corpus->add_document(tokenizer.encode(doc->string_value), tokenizer);
    }
    line_start = end + 1;
  }
  GSA_CHECK(corpus->size() > 0, path, ": no documents (every line is blank or every \"", field, "\" is empty)");
  return corpus;
}

// A memory-mapped file of little-endian token ids.
class BinCorpus final : public TokenCorpus {
 public:
  BinCorpus(const std::string& path, const CorpusOptions& o, int64_t vocab_size)
      : TokenCorpus(path), width_(o.bin_dtype == TokenFileDType::kUint32 ? 4 : 2),
        separator_(o.bin_document_separator), vocab_size_(vocab_size) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    GSA_CHECK(fd_ >= 0, path, ": cannot open the token file: ", std::strerror(errno));
    struct stat st {};
    GSA_CHECK(::fstat(fd_, &st) == 0, path, ": fstat: ", std::strerror(errno));
    bytes_ = static_cast<int64_t>(st.st_size);
    GSA_CHECK(bytes_ > 0, path, ": the token file is empty");
    GSA_CHECK(bytes_ % width_ == 0, path, ": ", bytes_, " bytes is not a multiple of ", width_, " (",
              width_ == 2 ? "uint16" : "uint32", " token ids): the id at byte offset ", bytes_ - bytes_ % width_,
              " is cut short (wrong data.corpus.bin_dtype, or a truncated file?)");
    void* map = ::mmap(nullptr, static_cast<size_t>(bytes_), PROT_READ, MAP_SHARED, fd_, 0);
    GSA_CHECK(map != MAP_FAILED, path, ": mmap: ", std::strerror(errno));
    data_ = static_cast<const unsigned char*>(map);
  }
  ~BinCorpus() override {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), static_cast<size_t>(bytes_));
    if (fd_ >= 0) ::close(fd_);
  }
  BinCorpus(const BinCorpus&) = delete;
  BinCorpus& operator=(const BinCorpus&) = delete;

  int64_t size() const override { return bytes_ / width_; }
  void read(int64_t begin, int64_t count, std::vector<int64_t>* ids, std::vector<int64_t>* starts) const override {
    GSA_CHECK(begin >= 0 && count >= 0 && begin + count <= size(), path(), ": read [", begin, ", ", begin + count,
              ") outside the ", size(), " tokens");
    ids->resize(static_cast<size_t>(count));
    starts->clear();
    for (int64_t i = 0; i < count; ++i) {
      const unsigned char* p = data_ + (begin + i) * width_;
      int64_t id = p[0] | (int64_t{p[1]} << 8);
      if (width_ == 4) id |= (int64_t{p[2]} << 16) | (int64_t{p[3]} << 24);
      GSA_CHECK(id < vocab_size_, path(), ": token id ", id, " at byte offset ", (begin + i) * width_,
                " is outside model.vocab_size = ", vocab_size_);
      (*ids)[static_cast<size_t>(i)] = id;
      if (i > 0 && separator_ >= 0 && (*ids)[static_cast<size_t>(i - 1)] == separator_) starts->push_back(begin + i);
    }
  }

 private:
  int64_t width_, separator_, vocab_size_;
  int fd_ = -1;
  int64_t bytes_ = 0;
  const unsigned char* data_ = nullptr;
};

}  // namespace

std::unique_ptr<TokenCorpus> load_corpus(const DataOptions& data, const Tokenizer& tokenizer, int64_t vocab_size) {
  const std::string& path = data.corpus.path;
  GSA_CHECK(!path.empty(), "data.corpus.path is empty");
  GSA_CHECK(!is_directory(path), path, ": is a directory, not a corpus file");
  switch (data.source) {
    case DataSourceKind::kText:
      return load_text(path, tokenizer);
    case DataSourceKind::kJsonl:
      return load_jsonl(path, data.corpus.jsonl_field, tokenizer);
    case DataSourceKind::kTokenBin:
      return std::make_unique<BinCorpus>(path, data.corpus, vocab_size);
    default:
      throw Error("load_corpus: data.source is a synthetic task, not a corpus");
  }
}

}  // namespace gsa
