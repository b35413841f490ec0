// TensorBoard event files; the contract is in gsa/trainer/event_writer.h.
#include "gsa/trainer/event_writer.h"

#include <unistd.h>

#include <chrono>

#include "event.pb.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"

namespace gsa {
namespace {

// Table-driven CRC32C, reflected polynomial 0x82F63B78.
struct Crc32cTable {
  uint32_t entries[256];
  Crc32cTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
      entries[i] = crc;
    }
  }
};

// TFRecord's mask, so that a CRC of data holding CRCs stays well distributed.
uint32_t masked_crc(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void append_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const Crc32cTable table;
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = table.entries[(crc ^ bytes[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

std::string tfrecord_frame(const std::string& data) {
  std::string out;
  append_le(out, data.size(), 8);
  append_le(out, masked_crc(out.data(), 8), 4);
  out += data;
  append_le(out, masked_crc(data.data(), data.size()), 4);
  return out;
}

EventWriter::EventWriter(const std::string& dir, int64_t start_step) {
  make_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  const std::string name = str_cat("events.out.tfevents.", static_cast<long long>(wall_time()), ".", host);
  // Two runs started in the same second (a quick restart) get distinct files: name, name.1, name.2, ...
  std::string path = join_path(dir, name);
  for (int attempt = 1; path_exists(path); ++attempt) path = join_path(dir, str_cat(name, ".", attempt));
  file_ = std::make_unique<AppendFile>(path, /*create_new=*/true);
  tensorboard::Event version;
  version.set_wall_time(wall_time());
  version.set_file_version("brain.Event:2");
  file_->append(tfrecord_frame(version.SerializeAsString()));
  tensorboard::Event start;
  start.set_wall_time(wall_time());
  start.set_step(start_step);
  start.mutable_session_log()->set_status(tensorboard::SessionLog::START);
  file_->append(tfrecord_frame(start.SerializeAsString()));
}

void EventWriter::add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars) {
  tensorboard::Event event;
  event.set_wall_time(wall_time());
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    tensorboard::SummaryValue* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  file_->append(tfrecord_frame(event.SerializeAsString()));
}

}  // namespace gsa
