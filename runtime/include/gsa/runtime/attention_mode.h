// Attention modes: the three ways one checkpoint can attend, defined once for `gsa eval` and `gsa generate`.
//
//   full       plain causal attention over the raw tokens: no gist token is inserted (the context is laid out
//              raw, in front of the suffix, so every token is a suffix token of a gist-free document and the
//              mask predicate reduces to the causal mask); selection off. An imported model behaves as the
//              original.
//   gist       the gist layout (compressed context) with the gist mask for every query: no unfolding, selection
//              off in every layer.
//   selective  GSA: the gist layout, and the suffix queries of layers >= first_selective_layer select and unfold
//              chunks, with the config's budget, fixed_k and keep_unselected_gists (selection on, whatever
//              attention.selection.enabled says).
//
// Contract: attention_mode_options(mode, options) gives everything a caller needs to lay out and run a document
// in that mode: whether gists are inserted, the gist layout options, the attention options (selection.enabled is
// true exactly in selective mode) and the forward's `selective` flag. mode_document() lays a document out for
// the mode (full: context + suffix as one raw suffix, word starts dropped; other modes: unchanged); build the
// layout from it with build_layout(docs, mode_options.gist, ...). parse_attention_mode() accepts exactly
// "full", "gist" and "selective" and throws gsa::Error naming anything else. config_attention_mode() is the
// mode a config describes on its own: selective when attention.selection.enabled, else gist.
#pragma once

#include <string>
#include <vector>

#include "gsa/config/options.h"
#include "gsa/runtime/gist_layout.h"

namespace gsa {

enum class AttentionMode { kFull, kGist, kSelective };

struct AttentionModeOptions {
  AttentionMode mode = AttentionMode::kSelective;
  bool insert_gists = true;    // false in full mode: the context stays raw
  GistOptions gist;            // the layout's options
  AttentionOptions attention;  // selection.enabled == (mode == kSelective)
  bool selective = true;       // LlamaModel::forward's `selective` argument
};

AttentionModeOptions attention_mode_options(AttentionMode mode, const GsaOptions& options);

// The document as `mode` lays it out (see the contract above).
Document mode_document(const Document& doc, const AttentionModeOptions& mode);

AttentionMode parse_attention_mode(const std::string& name);
// A comma-separated list ("full,gist,selective"): each name parsed, duplicates and an empty list refused.
std::vector<AttentionMode> parse_attention_modes(const std::string& list);
const char* attention_mode_name(AttentionMode mode);  // "full" | "gist" | "selective"
AttentionMode config_attention_mode(const GsaOptions& options);

}  // namespace gsa
