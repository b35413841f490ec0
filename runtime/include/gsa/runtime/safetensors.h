// safetensors reader and writer (https://github.com/huggingface/safetensors format): an 8-byte little-endian
// header length, a JSON header {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
// "__metadata__": {"key": "value"}}, then the raw little-endian tensor bytes.
//
// Contract:
// - load_safetensors returns contiguous CPU tensors in the file's dtype (F64, F32, F16, BF16, I64, I32, I16,
//   I8, U8, BOOL). A truncated or malformed file (short header, bad JSON, unknown dtype, offsets outside the
//   data or not matching dtype x shape, overlapping tensors) throws gsa::Error naming the file and the problem;
//   nothing is half-loaded.
// - save_safetensors writes any CPU or CUDA tensors (copied to CPU, made contiguous) in name order, to
//   "<path>.tmp", fsyncs it, renames it over <path> and fsyncs the folder: a crash never leaves a half-written
//   file at <path>. `hook` sees each of those steps (file_util.h; fault-injection tests).
#pragma once

#include <map>
#include <string>

#include <ATen/ATen.h>

#include "gsa/runtime/file_util.h"

namespace gsa {

using TensorMap = std::map<std::string, at::Tensor>;
using MetadataMap = std::map<std::string, std::string>;

TensorMap load_safetensors(const std::string& path, MetadataMap* metadata = nullptr);
void save_safetensors(const std::string& path, const TensorMap& tensors, const MetadataMap& metadata = {},
                      const FileOpHook& hook = {});

}  // namespace gsa
