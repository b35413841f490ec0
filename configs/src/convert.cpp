#include "convert.h"

namespace gsa::config_detail {
namespace {

namespace pc = gsa::config;

DType from_proto(pc::DType v) { return v == pc::BFLOAT16 ? DType::kBFloat16 : DType::kFloat32; }
pc::DType to_proto(DType v) { return v == DType::kBFloat16 ? pc::BFLOAT16 : pc::FLOAT32; }
BudgetKind from_proto(pc::BudgetKind v) { return v == pc::FIXED ? BudgetKind::kFixed : BudgetKind::kAdaptive; }
pc::BudgetKind to_proto(BudgetKind v) { return v == BudgetKind::kFixed ? pc::FIXED : pc::ADAPTIVE; }
TrainMode from_proto(pc::TrainMode v) { return v == pc::CPT ? TrainMode::kCpt : TrainMode::kSelective; }
pc::TrainMode to_proto(TrainMode v) { return v == TrainMode::kCpt ? pc::CPT : pc::SELECTIVE; }

static_assert(pc::RETRIEVAL == static_cast<int>(DataSourceKind::kRetrieval) &&
                  pc::PASSKEY == static_cast<int>(DataSourceKind::kPasskey) &&
                  pc::MULTI_DOC == static_cast<int>(DataSourceKind::kMultiDoc) &&
                  pc::TEXT == static_cast<int>(DataSourceKind::kText) &&
                  pc::JSONL == static_cast<int>(DataSourceKind::kJsonl) &&
                  pc::TOKEN_BIN == static_cast<int>(DataSourceKind::kTokenBin),
              "DataSourceKind and gsa.config.DataSourceKind list the same kinds in the same order");

ModelOptions from_proto(const pc::ModelConfig& m) {
  ModelOptions o;
  o.vocab_size = m.vocab_size();
  o.hidden_size = m.hidden_size();
  o.intermediate_size = m.intermediate_size();
  o.num_layers = m.num_layers();
  o.num_heads = m.num_heads();
  o.num_kv_heads = m.num_kv_heads();
  o.head_dim = m.head_dim();
  o.rope_theta = m.rope_theta();
  o.rms_norm_eps = m.rms_norm_eps();
  o.tie_embeddings = m.tie_embeddings();
  o.dtype = from_proto(m.dtype());
  o.init_std = m.init_std();
  o.architecture = m.architecture() == pc::QWEN2 ? Architecture::kQwen2 : Architecture::kLlama;
  o.attention_bias = m.attention_bias();
  o.rope_scaling = m.rope_scaling() == pc::LLAMA3_ROPE_SCALING ? RopeScaling::kLlama3 : RopeScaling::kNone;
  o.rope_scaling_factor = m.rope_scaling_factor();
  o.rope_low_freq_factor = m.rope_low_freq_factor();
  o.rope_high_freq_factor = m.rope_high_freq_factor();
  o.rope_original_max_position = m.rope_original_max_position();
  o.max_position_embeddings = m.max_position_embeddings();
  o.gist_token_ids.assign(m.gist_token_ids().begin(), m.gist_token_ids().end());
  return o;
}

void to_proto(const ModelOptions& o, pc::ModelConfig* m) {
  m->set_vocab_size(o.vocab_size);
  m->set_hidden_size(o.hidden_size);
  m->set_intermediate_size(o.intermediate_size);
  m->set_num_layers(o.num_layers);
  m->set_num_heads(o.num_heads);
  m->set_num_kv_heads(o.num_kv_heads);
  m->set_head_dim(o.head_dim);
  m->set_rope_theta(o.rope_theta);
  m->set_rms_norm_eps(o.rms_norm_eps);
  m->set_tie_embeddings(o.tie_embeddings);
  m->set_dtype(to_proto(o.dtype));
  m->set_init_std(o.init_std);
  m->set_architecture(o.architecture == Architecture::kQwen2 ? pc::QWEN2 : pc::LLAMA);
  m->set_attention_bias(o.attention_bias);
  m->set_rope_scaling(o.rope_scaling == RopeScaling::kLlama3 ? pc::LLAMA3_ROPE_SCALING : pc::NO_ROPE_SCALING);
  m->set_rope_scaling_factor(o.rope_scaling_factor);
  m->set_rope_low_freq_factor(o.rope_low_freq_factor);
  m->set_rope_high_freq_factor(o.rope_high_freq_factor);
  m->set_rope_original_max_position(o.rope_original_max_position);
  m->set_max_position_embeddings(o.max_position_embeddings);
  m->clear_gist_token_ids();
  for (int64_t id : o.gist_token_ids) m->add_gist_token_ids(id);
}

GistOptions from_proto(const pc::GistConfig& g) {
  GistOptions o;
  o.sink = g.sink();
  o.chunk = g.chunk();
  o.fanout = g.fanout();
  o.levels = g.levels();
  o.prev_chunks = g.prev_chunks();
  o.word_aware = g.word_aware();
  return o;
}

void to_proto(const GistOptions& o, pc::GistConfig* g) {
  g->set_sink(o.sink);
  g->set_chunk(o.chunk);
  g->set_fanout(o.fanout);
  g->set_levels(o.levels);
  g->set_prev_chunks(o.prev_chunks);
  g->set_word_aware(o.word_aware);
}

AttentionOptions from_proto(const pc::AttentionConfig& a) {
  AttentionOptions o;
  o.query_block = a.query_block();
  o.reference_chunk_queries = a.reference_chunk_queries();
  o.deterministic = a.deterministic();
  o.cuda_graphs = a.cuda_graphs();
  o.backend = a.backend() == pc::REFERENCE ? AttentionBackend::kReference
              : a.backend() == pc::KERNELS ? AttentionBackend::kKernels
                                           : AttentionBackend::kAuto;
  const pc::SelectionConfig& s = a.selection();
  o.selection.enabled = s.enabled();
  o.selection.first_selective_layer = s.first_selective_layer();
  o.selection.budget = from_proto(s.budget());
  o.selection.fixed_k = s.fixed_k();
  o.selection.keep_unselected_gists = s.keep_unselected_gists();
  return o;
}

void to_proto(const AttentionOptions& o, pc::AttentionConfig* a) {
  a->set_query_block(o.query_block);
  a->set_reference_chunk_queries(o.reference_chunk_queries);
  a->set_deterministic(o.deterministic);
  a->set_cuda_graphs(o.cuda_graphs);
  a->set_backend(o.backend == AttentionBackend::kReference ? pc::REFERENCE
                 : o.backend == AttentionBackend::kKernels ? pc::KERNELS
                                                           : pc::AUTO);
  pc::SelectionConfig* s = a->mutable_selection();
  s->set_enabled(o.selection.enabled);
  s->set_first_selective_layer(o.selection.first_selective_layer);
  s->set_budget(to_proto(o.selection.budget));
  s->set_fixed_k(o.selection.fixed_k);
  s->set_keep_unselected_gists(o.selection.keep_unselected_gists);
}

TrainOptions from_proto(const pc::TrainConfig& t) {
  TrainOptions o;
  o.mode = from_proto(t.mode());
  o.steps = t.steps();
  o.batch_size = t.batch_size();
  o.lr = t.lr();
  o.min_lr_ratio = t.min_lr_ratio();
  o.warmup_steps = t.warmup_steps();
  o.decay_fraction = t.decay_fraction();
  o.weight_decay = t.weight_decay();
  o.beta1 = t.beta1();
  o.beta2 = t.beta2();
  o.grad_clip = t.grad_clip();
  o.seed = t.seed();
  o.log_every = t.log_every();
  o.eval_batches = t.eval_batches();
  o.output_dir = t.output_dir();
  o.checkpoint_every = t.checkpoint_every();
  o.keep_checkpoints = t.keep_checkpoints();
  o.grad_accumulation = t.grad_accumulation();
  o.activation_checkpointing = t.activation_checkpointing();
  o.master_weights = from_proto(t.master_weights());
  return o;
}

void to_proto(const TrainOptions& o, pc::TrainConfig* t) {
  t->set_mode(to_proto(o.mode));
  t->set_steps(o.steps);
  t->set_batch_size(o.batch_size);
  t->set_lr(o.lr);
  t->set_min_lr_ratio(o.min_lr_ratio);
  t->set_warmup_steps(o.warmup_steps);
  t->set_decay_fraction(o.decay_fraction);
  t->set_weight_decay(o.weight_decay);
  t->set_beta1(o.beta1);
  t->set_beta2(o.beta2);
  t->set_grad_clip(o.grad_clip);
  t->set_seed(o.seed);
  t->set_log_every(o.log_every);
  t->set_eval_batches(o.eval_batches);
  t->set_output_dir(o.output_dir);
  t->set_checkpoint_every(o.checkpoint_every);
  t->set_keep_checkpoints(o.keep_checkpoints);
  t->set_grad_accumulation(o.grad_accumulation);
  t->set_activation_checkpointing(o.activation_checkpointing);
  t->set_master_weights(to_proto(o.master_weights));
}

DataOptions from_proto(const pc::DataConfig& d) {
  DataOptions o;
  const pc::RetrievalTaskConfig& r = d.retrieval();
  o.retrieval.num_pairs = r.num_pairs();
  o.retrieval.key_len = r.key_len();
  o.retrieval.value_len = r.value_len();
  o.retrieval.alphabet = r.alphabet();
  o.source = static_cast<DataSourceKind>(d.source());  // the enums list the same kinds in the same order
  o.tokenizer = d.tokenizer();
  o.examples_per_row = d.examples_per_row();
  o.row_tokens = d.row_tokens();
  o.passkey.filler_sentences = d.passkey().filler_sentences();
  o.passkey.digits = d.passkey().digits();
  const pc::MultiDocTaskConfig& m = d.multi_doc();
  o.multi_doc.documents = m.documents();
  o.multi_doc.pairs_per_document = m.pairs_per_document();
  o.multi_doc.key_len = m.key_len();
  o.multi_doc.value_len = m.value_len();
  o.multi_doc.alphabet = m.alphabet();
  o.multi_doc.questions = m.questions();
  o.multi_doc.pair_width = m.pair_width();
  o.multi_doc.min_documents = m.min_documents();
  o.multi_doc.upper_case_values = m.upper_case_values();
  o.multi_doc.compact = m.compact();
  o.multi_doc.digit_values = m.digit_values();
  o.multi_doc.packed_pairs = m.packed_pairs();
  o.multi_doc.filler = m.filler();
  o.multi_doc.copy_fraction = m.copy_fraction();
  o.multi_doc.copy_min_length = m.copy_min_length();
  o.multi_doc.copy_max_length = m.copy_max_length();
  o.multi_doc.copy_in_context = m.copy_in_context();
  o.multi_doc.copy_digits = m.copy_digits();
  const pc::CorpusConfig& c = d.corpus();
  o.corpus.path = c.path();
  o.corpus.sequence_length = c.sequence_length();
  o.corpus.jsonl_field = c.jsonl_field();
  o.corpus.bin_dtype = c.bin_dtype() == pc::UINT32 ? TokenFileDType::kUint32 : TokenFileDType::kUint16;
  o.corpus.bin_document_separator = c.bin_document_separator();
  return o;
}

void to_proto(const DataOptions& o, pc::DataConfig* d) {
  pc::RetrievalTaskConfig* r = d->mutable_retrieval();
  r->set_num_pairs(o.retrieval.num_pairs);
  r->set_key_len(o.retrieval.key_len);
  r->set_value_len(o.retrieval.value_len);
  r->set_alphabet(o.retrieval.alphabet);
  d->set_source(static_cast<pc::DataSourceKind>(o.source));
  d->set_tokenizer(o.tokenizer);
  d->set_examples_per_row(o.examples_per_row);
  d->set_row_tokens(o.row_tokens);
  d->mutable_passkey()->set_filler_sentences(o.passkey.filler_sentences);
  d->mutable_passkey()->set_digits(o.passkey.digits);
  pc::MultiDocTaskConfig* m = d->mutable_multi_doc();
  m->set_documents(o.multi_doc.documents);
  m->set_pairs_per_document(o.multi_doc.pairs_per_document);
  m->set_key_len(o.multi_doc.key_len);
  m->set_value_len(o.multi_doc.value_len);
  m->set_alphabet(o.multi_doc.alphabet);
  m->set_questions(o.multi_doc.questions);
  m->set_pair_width(o.multi_doc.pair_width);
  m->set_min_documents(o.multi_doc.min_documents);
  m->set_upper_case_values(o.multi_doc.upper_case_values);
  m->set_compact(o.multi_doc.compact);
  m->set_digit_values(o.multi_doc.digit_values);
  m->set_packed_pairs(o.multi_doc.packed_pairs);
  m->set_filler(o.multi_doc.filler);
  m->set_copy_fraction(o.multi_doc.copy_fraction);
  m->set_copy_min_length(o.multi_doc.copy_min_length);
  m->set_copy_max_length(o.multi_doc.copy_max_length);
  m->set_copy_in_context(o.multi_doc.copy_in_context);
  m->set_copy_digits(o.multi_doc.copy_digits);
  pc::CorpusConfig* c = d->mutable_corpus();
  c->set_path(o.corpus.path);
  c->set_sequence_length(o.corpus.sequence_length);
  c->set_jsonl_field(o.corpus.jsonl_field);
  c->set_bin_dtype(o.corpus.bin_dtype == TokenFileDType::kUint32 ? pc::UINT32 : pc::UINT16);
  c->set_bin_document_separator(o.corpus.bin_document_separator);
}

}  // namespace

GsaOptions from_proto(const pc::GsaConfig& config) {
  GsaOptions options;
  options.model = from_proto(config.model());
  options.gist = from_proto(config.gist());
  options.attention = from_proto(config.attention());
  options.train = from_proto(config.train());
  options.data = from_proto(config.data());
  return options;
}

pc::GsaConfig to_proto(const GsaOptions& options) {
  pc::GsaConfig config;
  to_proto(options.model, config.mutable_model());
  to_proto(options.gist, config.mutable_gist());
  to_proto(options.attention, config.mutable_attention());
  to_proto(options.train, config.mutable_train());
  to_proto(options.data, config.mutable_data());
  return config;
}

}  // namespace gsa::config_detail
