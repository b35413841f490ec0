#include "gsa/trainer/retrieval_task.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "gsa/runtime/error.h"

namespace gsa {
namespace {
int64_t symbol(int64_t i) { return 'a' + i; }
}  // namespace

RetrievalTask::RetrievalTask(const RetrievalTaskOptions& options, const GistOptions& gist, uint64_t seed)
    : options_(options), gist_(gist), rng_(seed) {
  const double keys = std::pow(static_cast<double>(options.alphabet), static_cast<double>(options.key_len));
  GSA_CHECK(keys >= options.num_pairs, "data.retrieval: ", options.num_pairs, " distinct keys need alphabet^key_len >= ",
            options.num_pairs, " (got ", keys, ")");
}

double RetrievalTask::chance_accuracy() const {
  return std::pow(1.0 / static_cast<double>(options_.alphabet), static_cast<double>(options_.value_len));
}

std::string RetrievalTask::state() const {
  std::ostringstream out;
  out << rng_;
  return out.str();
}

void RetrievalTask::restore_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 rng;
  in >> rng;
  GSA_CHECK(!in.fail(), "retrieval task: '", state.substr(0, 40), "...' is not a saved generator state");
  rng_ = rng;
}

Document RetrievalTask::sample_document(std::vector<int64_t>* answer) {
  std::uniform_int_distribution<int64_t> pick(0, options_.alphabet - 1);
  std::set<std::vector<int64_t>> used;
  std::vector<std::vector<int64_t>> keys, values;
  while (static_cast<int64_t>(keys.size()) < options_.num_pairs) {
    std::vector<int64_t> key(options_.key_len), value(options_.value_len);
    for (auto& t : key) t = symbol(pick(rng_));
    for (auto& t : value) t = symbol(pick(rng_));
    if (!used.insert(key).second) continue;
    keys.push_back(key);
    values.push_back(value);
  }
  Document doc;
  doc.context = {'k', 'v', ':'};
  for (size_t i = 0; i < keys.size(); ++i) {
    doc.context.insert(doc.context.end(), keys[i].begin(), keys[i].end());
    doc.context.push_back('=');
    doc.context.insert(doc.context.end(), values[i].begin(), values[i].end());
    doc.context.push_back(';');
  }
  const int64_t asked = std::uniform_int_distribution<int64_t>(0, options_.num_pairs - 1)(rng_);
  doc.suffix.push_back('?');
  doc.suffix.insert(doc.suffix.end(), keys[asked].begin(), keys[asked].end());
  doc.suffix.push_back('=');
  *answer = values[asked];
  return doc;
}

Document RetrievalTask::sample_prompt(std::vector<int64_t>* answer) { return sample_document(answer); }

TaskBatch RetrievalTask::next_batch(int64_t batch_size, at::Device device) {
  std::vector<Document> docs;
  for (int64_t b = 0; b < batch_size; ++b) {
    std::vector<int64_t> answer;
    Document doc = sample_document(&answer);
    doc.suffix.insert(doc.suffix.end(), answer.begin(), answer.end());
    docs.push_back(doc);
  }
  return make_task_batch(docs, options_.value_len, gist_, device);
}

TaskBatch make_task_batch(const std::vector<Document>& docs, int64_t answer_len, const GistOptions& gist,
                          at::Device device) {
  TaskBatch batch;
  int64_t length = 0;
  for (const Document& d : docs) {
    batch.layouts.push_back(build_layout({d}, gist));
    length = std::max(length, batch.layouts.back().size());
  }
  const int64_t rows = static_cast<int64_t>(docs.size());
  at::Tensor labels = at::full({rows, length}, -100, at::kLong);
  auto acc = labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < rows; ++b) {
    const GistLayout& l = batch.layouts[b];
    for (int64_t t = l.size() - answer_len; t < l.size(); ++t) acc[b][t - 1] = l.tokens[t];
  }
  batch.labels = labels.to(device);
  return batch;
}

}  // namespace gsa
