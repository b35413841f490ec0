// TensorBoard event files: OUTPUT_DIR/tensorboard/events.out.tfevents.<unix seconds>.<host>, read by TensorBoard
// itself. Plain C++: the protobuf code lives in its own library (gsa_tensorboard), out of LibTorch translation
// units (DESIGN.md section 2).
//
// Contract: the file is a sequence of TFRecords (uint64 length, masked CRC32C of the length, the serialised
// Event, masked CRC32C of the data; little-endian), each written with one write(2) on an O_APPEND descriptor so
// a kill leaves whole records. The first event is {file_version: "brain.Event:2"}, the second a SessionLog START
// at start_step (the run's first step), so TensorBoard drops what earlier files in the folder (an interrupted
// run, an older run) logged from that step on. add_scalars writes one Event at `step` holding one simple_value
// (float) per tag. Errors throw gsa::Error naming the file. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gsa/runtime/append_file.h"

namespace gsa {

// CRC32C (Castagnoli), as TFRecord frames use it; crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t size);
// The TFRecord framing of one serialised record.
std::string tfrecord_frame(const std::string& data);

class EventWriter {
 public:
  EventWriter(const std::string& dir, int64_t start_step);

  void add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars);
  const std::string& path() const { return file_->path(); }

 private:
  std::unique_ptr<AppendFile> file_;
};

}  // namespace gsa
