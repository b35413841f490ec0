// The training data stream (trainer/data_source.h, corpus.h, synthetic_tasks.h, task_batch.h).
// Oracles: the token ids written into the test's own files (the stream a corpus must reproduce, window by window,
// with its document cuts), a second source built from the same config (determinism), the one-replica global batch
// (dp shards), and the text of the synthetic examples read back (the answer is where the task says). Everything is
// integer: exact equality.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gsa/config/config_loader.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/model_tokenizer.h"
#include "gsa/trainer/data_source.h"
#include "gsa/trainer/synthetic_tasks.h"
#include "gsa/trainer/task_batch.h"

namespace gsa {
namespace {

std::string test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = std::string(GSA_BINARY_DIR) + "/test_tmp/data_source/" + info->name();
  remove_tree(dir);
  make_directories(dir);
  return dir;
}

// The message of the exception (gsa::Error, ConfigError) that f throws ("" when it throws none).
template <typename F>
std::string thrown_message(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

GsaOptions small_options(DataSourceKind source) {
  GsaOptions o;
  o.data.source = source;
  o.gist.chunk = 4;
  o.gist.sink = 2;
  return o;
}

std::shared_ptr<const ModelTokenizer> tokenizer_of(const GsaOptions& o) { return make_model_tokenizer(o); }

// Raw (non-gist) tokens of a layout, split by document.
std::vector<std::vector<int64_t>> raw_documents(const GistLayout& l) {
  std::vector<std::vector<int64_t>> docs(static_cast<size_t>(l.num_docs()));
  for (int64_t t = 0; t < l.size(); ++t) {
    if (!l.is_gist(t)) docs[static_cast<size_t>(l.doc[t])].push_back(l.tokens[t]);
  }
  return docs;
}

void expect_same_batch(const TaskBatch& a, const TaskBatch& b) {
  ASSERT_EQ(a.layouts.size(), b.layouts.size());
  for (size_t i = 0; i < a.layouts.size(); ++i) EXPECT_EQ(a.layouts[i].tokens, b.layouts[i].tokens) << "row " << i;
  EXPECT_TRUE(a.labels.cpu().equal(b.labels.cpu()));
}

// The stream a .bin corpus holds: ids, with `separator` ending a document now and then.
std::vector<int64_t> stream_ids(int64_t n, int64_t separator, int64_t vocab) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(i % 7 == 6 || i % 23 == 22 ? separator : (i * 37 + 11) % (vocab - 8));
  return ids;
}

std::string bin_bytes(const std::vector<int64_t>& ids, int width) {
  std::string bytes;
  for (int64_t id : ids) {
    for (int k = 0; k < width; ++k) bytes.push_back(static_cast<char>((id >> (8 * k)) & 0xff));
  }
  return bytes;
}

TEST(DataSource, TokenBinRowsAreTheFileWindowsCutAtSeparators) {
  const std::string dir = test_dir();
  for (const int width : {2, 4}) {
    GsaOptions o = small_options(DataSourceKind::kTokenBin);
    o.model.vocab_size = width == 2 ? 300 : 70000;  // uint32 ids above 65535
    o.data.corpus.bin_dtype = width == 2 ? TokenFileDType::kUint16 : TokenFileDType::kUint32;
    o.data.corpus.sequence_length = 40;
    const int64_t separator = width == 2 ? 258 : 65800;
    o.data.corpus.bin_document_separator = separator;
    std::vector<int64_t> ids = stream_ids(210, separator, o.model.vocab_size);  // 5 windows of 40, 10 left over
    if (width == 4) ids[5] = 69000;
    o.data.corpus.path = write(dir + "/tokens" + std::to_string(width) + ".bin", bin_bytes(ids, width));
    auto source = make_data_source(o, tokenizer_of(o), 1);
    EXPECT_FALSE(source->chance_accuracy().has_value());
    const TaskBatch batch = source->sequences(0, 7, at::kCPU);  // wraps: sequences 5, 6 are windows 0, 1
    for (int64_t i = 0; i < 7; ++i) {
      const int64_t begin = (i % 5) * 40;
      std::vector<std::vector<int64_t>> expected(1);  // the window cut after each separator
      for (int64_t p = begin; p < begin + 40; ++p) {
        if (p > begin && ids[static_cast<size_t>(p - 1)] == separator) expected.emplace_back();
        expected.back().push_back(ids[static_cast<size_t>(p)]);
      }
      const GistLayout& l = batch.layouts[static_cast<size_t>(i)];
      EXPECT_EQ(raw_documents(l), expected) << "width " << width << " sequence " << i;
      // Labels: the next raw token of the same document, nothing before a gist or across a boundary.
      auto labels = batch.labels.accessor<int64_t, 2>();
      for (int64_t t = 0; t < batch.labels.size(1); ++t) {
        const bool next_raw = t + 1 < l.size() && l.doc[t] == l.doc[t + 1] && !l.is_gist(t + 1);
        EXPECT_EQ(labels[i][t], next_raw ? l.tokens[t + 1] : -100) << "sequence " << i << " position " << t;
      }
    }
  }
}

TEST(DataSource, JsonlAndTextGoThroughTheTokenizerWithEos) {
  const std::string dir = test_dir();
  GsaOptions o = small_options(DataSourceKind::kJsonl);
  o.data.corpus.sequence_length = 12;
  o.data.corpus.path = write(dir + "/docs.jsonl", "{\"text\": \"hello world\", \"id\": 1}\n\n{\"text\": \"caf\\u00e9!\"}\n");
  auto source = make_data_source(o, tokenizer_of(o), 1);
  // Stream: bytes of each text + EOS (258): 11 + 1 + 6 + 1 = 19 tokens -> one window of 12.
  const std::string hello = "hello world";
  std::vector<int64_t> first(hello.begin(), hello.end());
  first.push_back(ByteTokenizer::kEos);
  EXPECT_EQ(raw_documents(source->sequences(0, 1, at::kCPU).layouts[0]), (std::vector<std::vector<int64_t>>{first}));

  o.data.source = DataSourceKind::kText;
  o.data.corpus.path = write(dir + "/book.txt", "Once upon a time.\nThe end.\n");
  o.data.corpus.sequence_length = 5;
  auto text = make_data_source(o, tokenizer_of(o), 1);
  const TaskBatch batch = text->sequences(1, 1, at::kCPU);
  EXPECT_EQ(raw_documents(batch.layouts[0]), (std::vector<std::vector<int64_t>>{{'u', 'p', 'o', 'n', ' '}}));
}

TEST(DataSource, BadFilesNameTheFileAndTheByteOffset) {
  const std::string dir = test_dir();
  auto error_of = [](const GsaOptions& o) -> std::string {
    try {
      make_data_source(o, tokenizer_of(o), 1);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  GsaOptions bin = small_options(DataSourceKind::kTokenBin);
  bin.data.corpus.sequence_length = 2;
  bin.data.corpus.path = write(dir + "/odd.bin", std::string("\x01\x00\x02\x00\x03", 5));
  EXPECT_EQ(error_of(bin), bin.data.corpus.path +
                               ": 5 bytes is not a multiple of 2 (uint16 token ids): the id at byte offset 4 is cut "
                               "short (wrong data.corpus.bin_dtype, or a truncated file?)");
  bin.data.corpus.path = write(dir + "/empty.bin", "");
  EXPECT_EQ(error_of(bin), bin.data.corpus.path + ": the token file is empty");
  bin.data.corpus.path = write(dir + "/big_id.bin", bin_bytes({1, 2, 3, 4000}, 2));
  auto source = make_data_source(bin, tokenizer_of(bin), 1);
  try {
    source->sequences(1, 1, at::kCPU);
    ADD_FAILURE() << "an id beyond the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              bin.data.corpus.path + ": token id 4000 at byte offset 6 is outside model.vocab_size = 264");
  }

  GsaOptions jsonl = small_options(DataSourceKind::kJsonl);
  jsonl.data.corpus.sequence_length = 2;
  jsonl.data.corpus.path = write(dir + "/bad_utf8.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"b\xff\"}\n");
  EXPECT_EQ(error_of(jsonl), jsonl.data.corpus.path + ": line 2: invalid UTF-8 at byte offset 26");
  jsonl.data.corpus.path = write(dir + "/no_field.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n");
  EXPECT_EQ(error_of(jsonl), jsonl.data.corpus.path + ": line 2 (byte offset 15): no \"text\" field");
  jsonl.data.corpus.path = write(dir + "/number.jsonl", "{\"text\": 5}\n");
  EXPECT_EQ(error_of(jsonl), jsonl.data.corpus.path + ": line 1 (byte offset 0): field \"text\" is a integer, not a string");
  jsonl.data.corpus.path = write(dir + "/array.jsonl", "[1]\n");
  EXPECT_EQ(error_of(jsonl),
            jsonl.data.corpus.path + ": line 1 (byte offset 0): a JSON array, expected an object with a \"text\" field");
  jsonl.data.corpus.path = write(dir + "/broken.jsonl", "{\"text\": \"a\"}\n{\"text\": }\n");
  EXPECT_EQ(error_of(jsonl).rfind(jsonl.data.corpus.path + ": line 2 (byte offset 14): invalid JSON at byte", 0), 0u)
      << error_of(jsonl);

  GsaOptions text = small_options(DataSourceKind::kText);
  text.data.corpus.sequence_length = 2;
  text.data.corpus.path = write(dir + "/bad.txt", "fine\xc3(");
  EXPECT_EQ(error_of(text), text.data.corpus.path + ": invalid UTF-8 at byte offset 4");
  text.data.corpus.path = write(dir + "/short.txt", "a");  // 'a' and EOS
  text.data.corpus.sequence_length = 3;
  EXPECT_EQ(error_of(text), text.data.corpus.path + ": 2 tokens, fewer than one sequence (data.corpus.sequence_length = 3)");
  text.data.corpus.path = dir;
  EXPECT_EQ(error_of(text), dir + ": is a directory, not a corpus file");
}

TEST(DataSource, DeterministicResumableAndDisjointAcrossReplicas) {
  const std::string dir = test_dir();
  GsaOptions synthetic = small_options(DataSourceKind::kMultiDoc);
  synthetic.data.examples_per_row = 2;
  GsaOptions corpus = small_options(DataSourceKind::kTokenBin);
  corpus.data.corpus.sequence_length = 16;
  corpus.data.corpus.bin_document_separator = 258;
  corpus.data.corpus.path = write(dir + "/t.bin", bin_bytes(stream_ids(16 * 40, 258, 264), 2));
  for (const GsaOptions& o : {synthetic, corpus}) {
    SCOPED_TRACE(o.data.corpus.path.empty() ? "multi_doc" : "token bin");
    const int64_t global = 8;
    // One replica: the oracle's global batches.
    auto whole = make_data_source(o, tokenizer_of(o), 7);
    const TaskBatch first = whole->next_batch(global, 0, global, at::kCPU);
    const TaskBatch second = whole->next_batch(global, 0, global, at::kCPU);
    EXPECT_EQ(whole->state(), "sequence 16");
    // The same config and seed: the same stream; a restored position continues it.
    auto again = make_data_source(o, tokenizer_of(o), 7);
    again->restore_state("sequence 8");
    expect_same_batch(again->next_batch(global, 0, global, at::kCPU), second);
    // dp 2: each replica's rows are its half of the global batch, padded to their own longest row.
    std::set<std::vector<int64_t>> seen;
    for (int64_t d = 0; d < 2; ++d) {
      auto replica = make_data_source(o, tokenizer_of(o), 7);
      const TaskBatch mine = replica->next_batch(global, d * 4, 4, at::kCPU);
      EXPECT_EQ(replica->state(), "sequence 8");
      for (int64_t r = 0; r < 4; ++r) {
        EXPECT_EQ(mine.layouts[static_cast<size_t>(r)].tokens, first.layouts[static_cast<size_t>(d * 4 + r)].tokens);
        seen.insert(mine.layouts[static_cast<size_t>(r)].tokens);
      }
    }
    EXPECT_EQ(seen.size(), 8u) << "the replicas' rows are not 8 distinct sequences";
    // Another seed: another synthetic stream.
    if (o.data.source == DataSourceKind::kMultiDoc) {
      EXPECT_NE(make_data_source(o, tokenizer_of(o), 8)->sequences(0, 1, at::kCPU).layouts[0].tokens,
                first.layouts[0].tokens);
    }
  }
  auto source = make_data_source(synthetic, tokenizer_of(synthetic), 1);
  for (const char* bad : {"", "sequence", "sequence -1", "position 3", "sequence 3 4"}) {
    EXPECT_THROW(source->restore_state(bad), Error) << bad;
  }
}

// The answer is what the context says it is, and the labels are on it.
TEST(SyntheticTasks, AnswersAreInTheContext) {
  for (const DataSourceKind kind : {DataSourceKind::kRetrieval, DataSourceKind::kPasskey, DataSourceKind::kMultiDoc}) {
    GsaOptions o = small_options(kind);
    o.data.multi_doc.documents = 5;
    o.data.multi_doc.pairs_per_document = 3;
    auto tokenizer = tokenizer_of(o);
    auto task = make_synthetic_task(o.data, tokenizer);
    std::mt19937_64 rng(3);
    for (int i = 0; i < 20; ++i) {
      const Example e = task->sample(rng);
      const std::string context = tokenizer->decode(e.doc.context), suffix = tokenizer->decode(e.doc.suffix);
      const std::string answer = suffix.substr(suffix.size() - static_cast<size_t>(e.answer_len));
      const std::string question = suffix.substr(0, suffix.size() - answer.size());
      if (kind == DataSourceKind::kPasskey) {
        EXPECT_EQ(question, "What is the pass key? The pass key is ");
        EXPECT_EQ(answer.size(), 5u);
        EXPECT_NE(context.find("The pass key is " + answer + ". Remember it. "), std::string::npos) << context;
        continue;
      }
      // "?<key>=": the key appears once in the context, followed by "=<answer>;".
      ASSERT_EQ(question.front(), '?');
      const std::string key = question.substr(1, question.size() - 2);
      const size_t at = context.find(key + "=");
      ASSERT_NE(at, std::string::npos) << context;
      size_t pos = at;
      int count = 0;
      while ((pos = context.find(key + "=", pos)) != std::string::npos) {
        count += (pos == 0 || context[pos - 1] == ';' || context[pos - 1] == ':' || context[pos - 1] == '|');
        ++pos;
      }
      EXPECT_EQ(count, 1) << key << " in " << context;
      EXPECT_EQ(context.substr(at + key.size() + 1, answer.size() + 1), answer + ";");
      if (kind == DataSourceKind::kMultiDoc) {
        for (int d = 0; d < 5; ++d) EXPECT_NE(context.find("#" + std::to_string(d) + "|"), std::string::npos);
      }
    }
    // Labels: exactly the answer tokens of each packed example.
    o.data.examples_per_row = 3;
    const TaskBatch batch = make_data_source(o, tokenizer, 1)->sequences(0, 2, at::kCPU);
    for (size_t r = 0; r < 2; ++r) {
      const GistLayout& l = batch.layouts[r];
      EXPECT_EQ(l.num_docs(), 3);
      int64_t labelled = 0;
      for (int64_t t = 0; t < batch.labels.size(1); ++t) {
        const int64_t label = batch.labels[static_cast<int64_t>(r)][t].item<int64_t>();
        if (label == -100) continue;
        ++labelled;
        EXPECT_EQ(label, l.tokens[t + 1]);
        EXPECT_EQ(l.doc_start[l.doc[t] + 1] - (t + 1) <= (kind == DataSourceKind::kPasskey ? 5 : 2), true);
      }
      EXPECT_EQ(labelled, 3 * (kind == DataSourceKind::kPasskey ? 5 : kind == DataSourceKind::kRetrieval ? 1 : 2));
    }
  }
}

// Several questions per example, pairs padded to chunk width: the labels sit exactly on the answer after every
// '=' of the suffix (found in the decoded text, not from the task's spans), each answer is the value the context
// gives its key, and every padded block of the context is one header or one pair.
TEST(SyntheticTasks, MultiDocQuestionsLabelEveryAnswerAndPairsFillTheirBlocks) {
  GsaOptions o = small_options(DataSourceKind::kMultiDoc);
  o.gist.sink = 0;
  o.gist.chunk = 8;
  o.data.multi_doc.documents = 4;
  o.data.multi_doc.pairs_per_document = 3;
  o.data.multi_doc.key_len = 2;
  o.data.multi_doc.value_len = 1;
  o.data.multi_doc.alphabet = 6;
  o.data.multi_doc.questions = 5;
  o.data.multi_doc.pair_width = 8;
  auto tokenizer = tokenizer_of(o);
  auto task = make_synthetic_task(o.data, tokenizer);
  std::mt19937_64 rng(11);
  std::vector<Example> examples;
  for (int i = 0; i < 6; ++i) {
    examples.push_back(task->sample(rng));
    const Example& e = examples.back();
    const std::string context = tokenizer->decode(e.doc.context), suffix = tokenizer->decode(e.doc.suffix);
    ASSERT_EQ(context.size(), 4u * (1 + 3) * 8);
    std::map<std::string, std::string> value_of;
    for (size_t b = 0; b < context.size(); b += 8) {
      const std::string block = context.substr(b, 8);
      const size_t d = b / 8 / 4;
      if (b / 8 % 4 == 0) {
        EXPECT_EQ(block, "#" + std::to_string(d) + "|     ");
        continue;
      }
      ASSERT_EQ(block.substr(2, 1) + block.substr(4, 4), "=;   ") << block;
      EXPECT_TRUE(value_of.emplace(block.substr(0, 2), block.substr(3, 1)).second) << "key twice: " << block;
    }
    // "?k=v;?k=v;...;?k=v": 5 distinct keys of the context, each with its value.
    ASSERT_EQ(suffix.size(), 5u * 6 - 1) << suffix;
    std::set<std::string> asked;
    for (size_t q = 0; q < 5; ++q) {
      const std::string part = suffix.substr(q * 6, 5);
      EXPECT_EQ(part[0], '?');
      EXPECT_EQ(part[3], '=');
      ASSERT_TRUE(value_of.count(part.substr(1, 2))) << part;
      EXPECT_EQ(part.substr(4, 1), value_of[part.substr(1, 2)]) << part;
      asked.insert(part.substr(1, 2));
      if (q < 4) {
        EXPECT_EQ(suffix[q * 6 + 5], ';');
      }
    }
    EXPECT_EQ(asked.size(), 5u);
  }
  const TaskBatch batch = make_answer_batch({{examples[0], examples[1]}, {examples[2]}}, o.gist, *tokenizer, at::kCPU);
  for (size_t r = 0; r < 2; ++r) {
    const GistLayout& l = batch.layouts[r];
    std::set<int64_t> expected;  // positions t whose next token follows a '=' of a suffix
    for (int64_t t = 1; t < l.size(); ++t) {
      const bool in_suffix = !l.is_gist(t) && l.doc_start[l.doc[t] + 1] - t <= 29;  // the last 29 of a document
      if (in_suffix && l.tokens[t - 1] == '=') expected.insert(t - 1);
    }
    EXPECT_EQ(expected.size(), r == 0 ? 10u : 5u);
    for (int64_t t = 0; t < batch.labels.size(1); ++t) {
      const int64_t label = batch.labels[static_cast<int64_t>(r)][t].item<int64_t>();
      EXPECT_EQ(label != -100, expected.count(t) == 1) << "row " << r << " position " << t;
      if (label != -100) {
        EXPECT_EQ(label, l.tokens[t + 1]);
      }
    }
  }
  // Answer spans that overlap, run out of the suffix or are empty are refused.
  for (const AnswerSpan bad : {AnswerSpan{27, 29}, AnswerSpan{20, 31}, AnswerSpan{25, 25}}) {
    Example e = examples[0];
    e.earlier_answers.push_back(bad);
    EXPECT_THROW(make_answer_batch({{e}}, o.gist, *tokenizer, at::kCPU), Error) << bad.begin << " " << bad.end;
  }
  // Options that cannot give the questions or fit a pair are refused, naming the field.
  GsaOptions too_many = o;
  too_many.data.multi_doc.questions = 13;
  EXPECT_NE(thrown_message([&] { make_synthetic_task(too_many.data, tokenizer); }).find("13 questions"), std::string::npos);
  GsaOptions narrow = o;
  narrow.data.multi_doc.pair_width = 4;
  EXPECT_NE(thrown_message([&] { make_synthetic_task(narrow.data, tokenizer); }).find("pair_width = 4 is narrower than 5"),
            std::string::npos);
}

// min_documents: each example draws its document count in [min_documents, documents], both ends reached.
TEST(SyntheticTasks, MultiDocMinDocumentsMixesContextLengths) {
  GsaOptions o = small_options(DataSourceKind::kMultiDoc);
  o.data.multi_doc.documents = 5;
  o.data.multi_doc.min_documents = 2;
  o.data.multi_doc.pairs_per_document = 2;
  auto tokenizer = tokenizer_of(o);
  auto task = make_synthetic_task(o.data, tokenizer);
  std::mt19937_64 rng(5);
  std::set<int64_t> counts;
  for (int i = 0; i < 100; ++i) {
    const std::string context = tokenizer->decode(task->sample(rng).doc.context);
    int64_t headers = 0;
    for (char c : context) headers += c == '#';
    EXPECT_GE(headers, 2);
    EXPECT_LE(headers, 5);
    counts.insert(headers);
  }
  EXPECT_EQ(counts, (std::set<int64_t>{2, 3, 4, 5}));
  // data.row_tokens packs these examples (2..5 documents of 17 tokens + the 7-token question: 41..92 raw
  // tokens) into rows of at most 120 raw tokens: each row fits, and it ends only when the next example (at most
  // 92 tokens) would not.
  o.data.row_tokens = 120;
  const TaskBatch batch = make_data_source(o, tokenizer, 3)->sequences(0, 40, at::kCPU);
  std::set<int64_t> examples_per_row;
  for (const GistLayout& l : batch.layouts) {
    int64_t raw = 0;
    for (int64_t t = 0; t < l.size(); ++t) raw += !l.is_gist(t);
    EXPECT_LE(raw, 120);
    EXPECT_GT(raw, 120 - 92);
    examples_per_row.insert(l.num_docs());
  }
  EXPECT_GT(examples_per_row.size(), 1u) << "every row packed the same number of examples";
  EXPECT_NE(thrown_message([] { load_config_text("data { row_tokens: 120 examples_per_row: 2 }", "t.pbtxt"); })
                .find("data.examples_per_row = 2 must then be 1"),
            std::string::npos);
}

}  // namespace
}  // namespace gsa
