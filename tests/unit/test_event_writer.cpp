// TensorBoard event files (trainer/event_writer.h): CRC32C test vectors, the TFRecord framing, and a written file
// walked record by record with both CRCs checked. (TensorBoard itself reads the files in e2e_train_tensorboard.)
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gsa/runtime/file_util.h"
#include "gsa/trainer/event_writer.h"

namespace gsa {
namespace {

uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

uint64_t read_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

// The payloads of a TFRecord file; fails the test on a bad length, CRC or trailing bytes.
std::vector<std::string> read_records(const std::string& file) {
  std::vector<std::string> records;
  size_t at = 0;
  while (at < file.size()) {
    EXPECT_GE(file.size() - at, 16u) << "truncated record at " << at;
    if (file.size() - at < 16) break;
    const uint64_t length = read_le(file, at, 8);
    EXPECT_EQ(read_le(file, at + 8, 4), masked(crc32c(file.data() + at, 8))) << "length CRC at " << at;
    EXPECT_LE(at + 16 + length, file.size());
    const std::string data = file.substr(at + 12, length);
    EXPECT_EQ(read_le(file, at + 12 + length, 4), masked(crc32c(data.data(), data.size()))) << "data CRC at " << at;
    records.push_back(data);
    at += 16 + length;
  }
  return records;
}

TEST(EventWriter, Crc32cTestVectors) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string zeros(32, '\0');  // RFC 3720 B.4
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
}

TEST(EventWriter, FramesRecords) {
  const std::string frame = tfrecord_frame("abc");
  ASSERT_EQ(frame.size(), 19u);
  EXPECT_EQ(read_le(frame, 0, 8), 3u);
  EXPECT_EQ(frame.substr(12, 3), "abc");
  EXPECT_EQ(read_records(frame), std::vector<std::string>{"abc"});
}

TEST(EventWriter, WritesVersionStartAndScalars) {
  const std::string dir = std::string(GSA_BINARY_DIR) + "/test_tmp/event_writer";
  remove_tree(dir);
  std::string path;
  {
    EventWriter writer(dir, 5);
    writer.add_scalars(5, {{"loss", 1.5}, {"lr", 0.25}});
    writer.add_scalars(6, {{"loss", 0.0}});
    path = writer.path();
  }
  EXPECT_EQ(path.rfind(dir + "/events.out.tfevents.", 0), 0u) << path;
  EventWriter second(dir, 7);  // the same second: a distinct file
  EXPECT_NE(second.path(), path);
  const std::vector<std::string> records = read_records(read_file(path));
  ASSERT_EQ(records.size(), 4u);
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  EXPECT_EQ(records[1].find("loss"), std::string::npos);  // the SessionLog START
  EXPECT_NE(records[2].find("loss"), std::string::npos);
  EXPECT_NE(records[2].find("lr"), std::string::npos);
  // simple_value 1.5f, as protobuf writes a float: tag (2 << 3 | 5) then 4 little-endian bytes.
  const float value = 1.5f;
  std::string encoded("\x15", 1);
  encoded.append(reinterpret_cast<const char*>(&value), 4);
  EXPECT_NE(records[2].find(encoded), std::string::npos);
  // 0.0 is written too (simple_value has presence, as in TensorFlow's oneof): TensorBoard skips a value without it.
  EXPECT_NE(records[3].find(std::string("\x15\0\0\0\0", 5)), std::string::npos);
  // The START record: Event.session_log is field 7 (tag 0x3a), status START = 1.
  EXPECT_NE(records[1].find(std::string("\x3a\x02\x08\x01", 4)), std::string::npos);
}

}  // namespace
}  // namespace gsa
