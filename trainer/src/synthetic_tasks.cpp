#include "gsa/trainer/synthetic_tasks.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gsa/config/multi_doc_rules.h"
#include "gsa/runtime/error.h"

namespace gsa {
namespace {

// Key symbols: a-z then A-Z (the first `alphabet` of them).
constexpr char kSymbols[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

// A random string of `length` characters, each drawn uniformly from `chars`.
std::string random_chars(std::mt19937_64& rng, int64_t length, const std::string& chars) {
  std::uniform_int_distribution<int64_t> pick(0, static_cast<int64_t>(chars.size()) - 1);
  std::string s;
  for (int64_t i = 0; i < length; ++i) s.push_back(chars[static_cast<size_t>(pick(rng))]);
  return s;
}

// A random string of `length` symbols from the first `alphabet` of kSymbols.
std::string random_symbols(std::mt19937_64& rng, int64_t length, int64_t alphabet) {
  return random_chars(rng, length, std::string(kSymbols, static_cast<size_t>(alphabet)));
}

// A random string of `length` decimal digits.
std::string random_digits(std::mt19937_64& rng, int64_t length) {
  std::uniform_int_distribution<int> digit(0, 9);
  std::string s;
  for (int64_t i = 0; i < length; ++i) s.push_back(static_cast<char>('0' + digit(rng)));
  return s;
}

enum class ValueSymbols { kLowerCase, kUpperCase, kDigits };

// `count` distinct keys and a value for each: letters from the first `alphabet` lower-case ones (upper-case
// with kUpperCase), or digits.
void draw_pairs(std::mt19937_64& rng, int64_t count, int64_t key_len, int64_t value_len, int64_t alphabet,
                std::vector<std::string>* keys, std::vector<std::string>* values,
                ValueSymbols value_symbols = ValueSymbols::kLowerCase) {
  std::set<std::string> used;
  while (static_cast<int64_t>(keys->size()) < count) {
    std::string key = random_symbols(rng, key_len, alphabet);
    std::string value = value_symbols == ValueSymbols::kDigits ? random_digits(rng, value_len)
                                                               : random_symbols(rng, value_len, alphabet);
    if (value_symbols == ValueSymbols::kUpperCase) {
      for (char& c : value) c = static_cast<char>(c - 'a' + 'A');
    }
    if (!used.insert(key).second) continue;
    keys->push_back(key);
    values->push_back(value);
  }
}

void check_keys(const char* section, int64_t pairs, int64_t key_len, int64_t alphabet) {
  const double keys = std::pow(static_cast<double>(alphabet), static_cast<double>(key_len));
  GSA_CHECK(keys >= static_cast<double>(pairs), section, ": ", pairs, " distinct keys need alphabet^key_len >= ", pairs,
            " (got ", keys, ")");
}

class TextTask : public SyntheticTask {
 protected:
  explicit TextTask(std::shared_ptr<const Tokenizer> tokenizer) : tokenizer_(std::move(tokenizer)) {}
  Example make(const std::string& context, const std::string& question, const std::string& answer) const {
    Example e;
    e.doc.context = tokenizer_->encode(context);
    e.doc.suffix = tokenizer_->encode(question);
    const std::vector<int64_t> answer_ids = tokenizer_->encode(answer);
    e.doc.suffix.insert(e.doc.suffix.end(), answer_ids.begin(), answer_ids.end());
    e.answer_len = static_cast<int64_t>(answer_ids.size());
    return e;
  }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
};

class RetrievalTask final : public TextTask {
 public:
  RetrievalTask(const RetrievalTaskOptions& o, std::shared_ptr<const Tokenizer> tokenizer)
      : TextTask(std::move(tokenizer)), o_(o) {
    check_keys("data.retrieval", o.num_pairs, o.key_len, o.alphabet);
  }
  Example sample(std::mt19937_64& rng) const override {
    std::vector<std::string> keys, values;
    draw_pairs(rng, o_.num_pairs, o_.key_len, o_.value_len, o_.alphabet, &keys, &values);
    std::string context = "kv:";
    for (size_t i = 0; i < keys.size(); ++i) context += keys[i] + "=" + values[i] + ";";
    const auto asked = static_cast<size_t>(std::uniform_int_distribution<int64_t>(0, o_.num_pairs - 1)(rng));
    return make(context, "?" + keys[asked] + "=", values[asked]);
  }
  double chance_accuracy() const override {
    return std::pow(1.0 / static_cast<double>(o_.alphabet), static_cast<double>(o_.value_len));
  }

 private:
  RetrievalTaskOptions o_;
};

class PasskeyTask final : public TextTask {
 public:
  PasskeyTask(const PasskeyTaskOptions& o, std::shared_ptr<const Tokenizer> tokenizer)
      : TextTask(std::move(tokenizer)), o_(o) {}
  Example sample(std::mt19937_64& rng) const override {
    static const char* const kFiller[] = {"The grass is green. ", "The sky is blue. ", "The sun is yellow. ",
                                          "Here we go. ", "There and back again. "};
    std::uniform_int_distribution<int> sentence(0, 4);
    const std::string key = random_digits(rng, o_.digits);
    const int64_t at = std::uniform_int_distribution<int64_t>(0, o_.filler_sentences)(rng);
    std::string context;
    for (int64_t i = 0; i <= o_.filler_sentences; ++i) {
      if (i == at) context += "The pass key is " + key + ". Remember it. ";
      if (i < o_.filler_sentences) context += kFiller[sentence(rng)];
    }
    return make(context, "What is the pass key? The pass key is ", key);
  }
  double chance_accuracy() const override { return std::pow(0.1, static_cast<double>(o_.digits)); }

 private:
  PasskeyTaskOptions o_;
};

class MultiDocTask final : public SyntheticTask {
 public:
  MultiDocTask(const MultiDocTaskOptions& o, std::shared_ptr<const Tokenizer> tokenizer)
      : o_(o), tokenizer_(std::move(tokenizer)) {
    const std::vector<FieldProblem> problems = multi_doc_problems(o);
    GSA_CHECK(problems.empty(), problems.front().message);
  }
  Example sample(std::mt19937_64& rng) const override {
    // No draw when copy_fraction is 0: retrieval-only streams are those of the options without copies.
    if (o_.copy_fraction > 0 && std::bernoulli_distribution(o_.copy_fraction)(rng)) return copy_example(rng);
    const int64_t documents =
        o_.min_documents > 0 ? std::uniform_int_distribution<int64_t>(o_.min_documents, o_.documents)(rng) : o_.documents;
    std::vector<std::string> keys, values;
    draw_pairs(rng, documents * o_.pairs_per_document, o_.key_len, o_.value_len, o_.alphabet, &keys, &values,
               o_.digit_values        ? ValueSymbols::kDigits
               : o_.upper_case_values ? ValueSymbols::kUpperCase
                                      : ValueSymbols::kLowerCase);
    std::string context;
    for (int64_t d = 0; d < documents; ++d) {
      context += padded(header(d));
      std::string packed;
      for (int64_t p = 0; p < o_.pairs_per_document; ++p) {
        const auto i = static_cast<size_t>(d * o_.pairs_per_document + p);
        if (o_.packed_pairs) {
          packed += keys[i] + values[i];
        } else {
          context += padded(keys[i] + (o_.compact ? "" : "=") + values[i] + ";");
        }
      }
      if (o_.packed_pairs) {  // padded up to a multiple of pair_width (> 0: multi_doc_problems)
        const auto width = static_cast<size_t>(o_.pair_width);
        packed.resize((packed.size() + width - 1) / width * width, ' ');
        context += packed;
      }
      context += std::string(static_cast<size_t>(o_.filler), '.');
    }
    Example e;
    e.doc.context = tokenizer_->encode(context);
    std::set<int64_t> asked;
    while (static_cast<int64_t>(asked.size()) < o_.questions) {
      const int64_t needle = std::uniform_int_distribution<int64_t>(0, documents - 1)(rng);
      const int64_t pair = std::uniform_int_distribution<int64_t>(0, o_.pairs_per_document - 1)(rng);
      const int64_t i = needle * o_.pairs_per_document + pair;
      if (!asked.insert(i).second) continue;
      if (asked.size() > 1) {  // the previous answer was its last one so far: it is an earlier answer now
        append(&e.doc.suffix, ";");
        e.earlier_answers.push_back({static_cast<int64_t>(e.doc.suffix.size()) - 1 - e.answer_len,
                                     static_cast<int64_t>(e.doc.suffix.size()) - 1});
      }
      append(&e.doc.suffix, "?" + keys[static_cast<size_t>(i)] + (o_.compact ? "" : "="));
      e.answer_len = append(&e.doc.suffix, values[static_cast<size_t>(i)]);
    }
    return e;
  }
  double chance_accuracy() const override {  // of a retrieval answer: copy examples are never scored
    return std::pow(o_.digit_values ? 0.1 : 1.0 / static_cast<double>(o_.alphabet), static_cast<double>(o_.value_len));
  }

 private:
  static std::string header(int64_t d) { return "#" + std::to_string(d) + "|"; }
  std::string padded(std::string s) const {
    if (o_.pair_width > 0) s.resize(static_cast<size_t>(o_.pair_width), ' ');
    return s;
  }
  // Appends the tokens of `text`; returns how many.
  int64_t append(std::vector<int64_t>* tokens, const std::string& text) const {
    const std::vector<int64_t> ids = tokenizer_->encode(text);
    tokens->insert(tokens->end(), ids.begin(), ids.end());
    return static_cast<int64_t>(ids.size());
  }
  // L key symbols, "|", the same L again; the copy's tokens but the first are the answer (all of them if the
  // tokenizer made the copy one token).
  Example copy_example(std::mt19937_64& rng) const {
    const int64_t length = std::uniform_int_distribution<int64_t>(o_.copy_min_length, o_.copy_max_length)(rng);
    const std::string keys(kSymbols, static_cast<size_t>(o_.alphabet));
    const std::string symbols = random_chars(rng, length, o_.copy_digits ? keys + "0123456789" : keys);
    Example e;
    if (o_.copy_in_context) {
      e.doc.context = tokenizer_->encode(symbols);
    } else {
      append(&e.doc.suffix, symbols);
    }
    append(&e.doc.suffix, "|");
    const int64_t copied = append(&e.doc.suffix, symbols);
    e.answer_len = copied > 1 ? copied - 1 : copied;
    return e;
  }

  MultiDocTaskOptions o_;
  std::shared_ptr<const Tokenizer> tokenizer_;
};

}  // namespace

std::unique_ptr<SyntheticTask> make_synthetic_task(const DataOptions& data, std::shared_ptr<const Tokenizer> tokenizer) {
  switch (data.source) {
    case DataSourceKind::kRetrieval:
      return std::make_unique<RetrievalTask>(data.retrieval, std::move(tokenizer));
    case DataSourceKind::kPasskey:
      return std::make_unique<PasskeyTask>(data.passkey, std::move(tokenizer));
    case DataSourceKind::kMultiDoc:
      return std::make_unique<MultiDocTask>(data.multi_doc, std::move(tokenizer));
    default:
      throw Error("make_synthetic_task: data.source is a corpus, not a synthetic task");
  }
}

DataOptions retrieval_only(DataOptions data) {
  data.multi_doc.copy_fraction = 0;
  return data;
}

}  // namespace gsa
