// The digits recipe of data.multi_doc (the demo, configs/demo.pbtxt; docs/demo-experiments.md)
// for the tests that draw it: `documents` documents of a header chunk "#d|", one chunk of three packed pairs
// "a7b3c9" and 48 filler dots (64 tokens each with the byte tokenizer and pair_width 8); keys from 52 letters,
// digit values, three questions; no copy examples and a fixed document count (callers add those).
#pragma once

#include <cstdint>

#include "gsa/config/options.h"

namespace gsa::test {

inline MultiDocTaskOptions digits_recipe(int64_t documents = 4) {
  MultiDocTaskOptions m;
  m.documents = documents;
  m.pairs_per_document = 3;
  m.key_len = 1;
  m.value_len = 1;
  m.alphabet = 52;
  m.digit_values = true;
  m.packed_pairs = true;
  m.compact = true;
  m.pair_width = 8;
  m.filler = 48;
  m.questions = 3;
  return m;
}

}  // namespace gsa::test
