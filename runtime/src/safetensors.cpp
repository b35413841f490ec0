// safetensors reader and writer; the contract is in gsa/runtime/safetensors.h.
//
// Reading: mmap the file once, validate the whole header (length, JSON, every entry, offsets against the data
// section, overlaps, BOOL bytes), and only then copy each tensor's bytes into a fresh owning CPU tensor.
// Writing: CPU contiguous copies, a compact header in name order padded with spaces to a multiple of 8 bytes
// (as the reference implementation pads it), the data in the same order, to "<path>.tmp", fsync, rename.
#include "gsa/runtime/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "gsa/runtime/error.h"
#include "gsa/runtime/file_util.h"
#include "gsa/runtime/json_reader.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; so must the host be");

namespace gsa {
namespace {

// The reference implementation refuses headers above 100 MB; so do we (a garbage length fails fast).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr char kMetadataKey[] = "__metadata__";

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  int64_t itemsize;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

std::string dtype_names() {
  std::string names;
  for (const DtypeInfo& info : kDtypes) names += str_cat(names.empty() ? "" : ", ", info.name);
  return names;
}

const DtypeInfo* dtype_by_name(std::string_view name) {
  for (const DtypeInfo& info : kDtypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

const DtypeInfo* dtype_by_type(at::ScalarType type) {
  for (const DtypeInfo& info : kDtypes) {
    if (type == info.type) return &info;
  }
  return nullptr;
}

std::string format_list(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += str_cat(i == 0 ? "" : ", ", values[i]);
  return out + "]";
}

// ---------------------------------------------------------------------------------------------------------
// Reading

// A read-only private mapping of a whole file (nothing mapped for an empty file).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    GSA_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int err = errno;
      ::close(fd);
      throw Error(str_cat(path, ": cannot stat: ", std::strerror(err)));
    }
    size_ = static_cast<uint64_t>(info.st_size);
    if (size_ > 0) {
      void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      const int err = errno;
      ::close(fd);
      GSA_CHECK(mapped != MAP_FAILED, path, ": cannot mmap ", size_, " bytes: ", std::strerror(err));
      data_ = static_cast<const uint8_t*>(mapped);
    } else {
      ::close(fd);
    }
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// One validated header entry; begin/end are relative to the start of the data section.
struct TensorEntry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<int64_t> shape;
  int64_t begin = 0;
  int64_t end = 0;
};

// The entry's field, or an error naming it.
const json::Value& require_field(const std::string& where, const json::Value& entry, const char* field) {
  const json::Value* value = entry.find(field);
  GSA_CHECK(value != nullptr, where, ": missing field '", field, "'");
  return *value;
}

std::vector<int64_t> read_integer_array(const std::string& where, const json::Value& value, const char* field) {
  GSA_CHECK(value.is_array(), where, ": field '", field, "' must be an array of non-negative integers, got ",
            json::kind_name(value.kind));
  std::vector<int64_t> out;
  for (const json::Value& item : value.array_items) {
    GSA_CHECK(item.is_integer() && item.int_value >= 0, where, ": field '", field,
              "' must hold non-negative integers, got ",
              item.is_integer() ? std::to_string(item.int_value) : json::kind_name(item.kind));
    out.push_back(item.int_value);
  }
  return out;
}

TensorEntry parse_entry(const std::string& path, const std::string& name, const json::Value& value,
                        int64_t data_bytes) {
  const std::string where = str_cat(path, ": tensor '", name, "'");
  GSA_CHECK(value.is_object(), where, ": entry must be an object, got ", json::kind_name(value.kind));
  TensorEntry entry;
  entry.name = name;

  const json::Value& dtype = require_field(where, value, "dtype");
  GSA_CHECK(dtype.is_string(), where, ": field 'dtype' must be a string, got ", json::kind_name(dtype.kind));
  entry.dtype = dtype_by_name(dtype.string_value);
  GSA_CHECK(entry.dtype != nullptr, where, ": unknown dtype '", dtype.string_value, "' (supported: ", dtype_names(),
            ")");

  entry.shape = read_integer_array(where, require_field(where, value, "shape"), "shape");
  const std::vector<int64_t> offsets =
      read_integer_array(where, require_field(where, value, "data_offsets"), "data_offsets");
  GSA_CHECK(offsets.size() == 2, where, ": field 'data_offsets' must be [begin, end], got ", offsets.size(),
            " values");
  entry.begin = offsets[0];
  entry.end = offsets[1];
  GSA_CHECK(entry.begin <= entry.end, where, ": data_offsets ", format_list(offsets), " end before they begin");
  GSA_CHECK(entry.end <= data_bytes, where, ": data_offsets ", format_list(offsets),
            " run past the end of the data section (", data_bytes, " bytes; truncated file?)");

  // numel * itemsize without overflow: a zero dim makes it 0 whatever the others are.
  const bool empty = std::find(entry.shape.begin(), entry.shape.end(), 0) != entry.shape.end();
  int64_t needed = empty ? 0 : entry.dtype->itemsize;
  for (const int64_t dim : entry.shape) {
    if (empty) break;
    GSA_CHECK(needed <= std::numeric_limits<int64_t>::max() / dim, where, ": shape ", format_list(entry.shape),
              " has more bytes than fit in int64");
    needed *= dim;
  }
  const int64_t held = entry.end - entry.begin;
  GSA_CHECK(held == needed, where, ": data_offsets ", format_list(offsets), " hold ", held, " bytes but ",
            entry.dtype->name, " ", format_list(entry.shape), " needs ", needed);
  return entry;
}

MetadataMap parse_metadata(const std::string& path, const json::Value& value) {
  GSA_CHECK(value.is_object(), path, ": ", kMetadataKey, " must be an object of strings, got ",
            json::kind_name(value.kind));
  MetadataMap metadata;
  for (const auto& [key, item] : value.object_items) {
    GSA_CHECK(item.is_string(), path, ": ", kMetadataKey, " '", key, "' must be a string, got ",
              json::kind_name(item.kind));
    metadata.emplace(key, item.string_value);
  }
  return metadata;
}

// No two non-empty byte ranges may share a byte.
void check_no_overlaps(const std::string& path, std::vector<const TensorEntry*> entries) {
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const TensorEntry* entry) { return entry->begin == entry->end; }),
                entries.end());
  std::sort(entries.begin(), entries.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < entries.size(); ++i) {
    const TensorEntry& prev = *entries[i - 1];
    const TensorEntry& next = *entries[i];
    GSA_CHECK(next.begin >= prev.end, path, ": tensors '", prev.name, "' data_offsets ",
              format_list({prev.begin, prev.end}), " and '", next.name, "' data_offsets ",
              format_list({next.begin, next.end}), " overlap");
  }
}

void check_bool_bytes(const std::string& path, const TensorEntry& entry, const uint8_t* data) {
  for (int64_t i = entry.begin; i < entry.end; ++i) {
    GSA_CHECK(data[i] <= 1, path, ": tensor '", entry.name, "': BOOL byte ", i - entry.begin, " is ",
              static_cast<int>(data[i]), ", expected 0 or 1");
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing

struct PreparedTensor {
  const std::string* name;
  const DtypeInfo* dtype;
  at::Tensor data;  // CPU, contiguous
  int64_t begin;
  int64_t end;
};

void write_all(int fd, const void* bytes, size_t size, const std::string& tmp_path) {
  const auto* cursor = static_cast<const char*>(bytes);
  while (size > 0) {
    const size_t chunk = std::min<size_t>(size, size_t{1} << 30);
    const ssize_t written = ::write(fd, cursor, chunk);
    if (written < 0 && errno == EINTR) continue;
    GSA_CHECK(written > 0, tmp_path, ": write failed: ", written < 0 ? std::strerror(errno) : "wrote 0 bytes");
    cursor += written;
    size -= static_cast<size_t>(written);
  }
}

std::string build_header(const std::vector<PreparedTensor>& prepared, const MetadataMap& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += str_cat(json::quote_json(kMetadataKey), ":{");
    bool first = true;
    for (const auto& [key, value] : metadata) {
      header += str_cat(first ? "" : ",", json::quote_json(key), ":", json::quote_json(value));
      first = false;
    }
    header += "}";
  }
  for (const PreparedTensor& tensor : prepared) {
    if (header.size() > 1) header += ",";
    std::string shape = "[";
    for (int64_t d = 0; d < tensor.data.dim(); ++d) shape += str_cat(d == 0 ? "" : ",", tensor.data.size(d));
    shape += "]";
    header += str_cat(json::quote_json(*tensor.name), ":{\"dtype\":\"", tensor.dtype->name, "\",\"shape\":", shape,
                      ",\"data_offsets\":[", tensor.begin, ",", tensor.end, "]}");
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

void write_file(const std::string& path, const std::string& header, const std::vector<PreparedTensor>& prepared,
                const FileOpHook& hook) {
  auto step = [&](const char* op, const std::string& on) {
    if (hook) hook(op, on);
  };
  const std::string tmp_path = path + ".tmp";
  step("create", tmp_path);
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  GSA_CHECK(fd >= 0, path, ": cannot create ", tmp_path, ": ", std::strerror(errno));
  try {
    uint8_t length_prefix[8];
    const uint64_t header_bytes = header.size();
    std::memcpy(length_prefix, &header_bytes, sizeof(length_prefix));
    step("write", tmp_path);
    write_all(fd, length_prefix, sizeof(length_prefix), tmp_path);
    write_all(fd, header.data(), header.size(), tmp_path);
    step("write-rest", tmp_path);  // stopping here leaves the header without the data
    for (const PreparedTensor& tensor : prepared) {
      const auto bytes = static_cast<size_t>(tensor.end - tensor.begin);
      if (bytes > 0) write_all(fd, tensor.data.data_ptr(), bytes, tmp_path);
    }
    step("fsync", tmp_path);
    GSA_CHECK(::fsync(fd) == 0, tmp_path, ": fsync failed: ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp_path.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp_path.c_str());
    throw Error(str_cat(tmp_path, ": close failed: ", std::strerror(err)));
  }
  step("rename", path);
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_path.c_str());
    throw Error(str_cat(path, ": cannot rename ", tmp_path, " over it: ", std::strerror(err)));
  }
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  step("fsync-dir", dir);
  sync_directory(dir);
}

}  // namespace

TensorMap load_safetensors(const std::string& path, MetadataMap* metadata) {
  const MappedFile file(path);
  const uint64_t file_size = file.size();
  GSA_CHECK(file_size >= 8, path, ": file is ", file_size,
            " bytes, too short for the 8-byte header length (truncated?)");
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file.data(), sizeof(header_bytes));
  GSA_CHECK(header_bytes <= file_size - 8, path, ": header length ", header_bytes, " is larger than the ",
            file_size - 8, " bytes after the length prefix (truncated file?)");
  GSA_CHECK(header_bytes <= kMaxHeaderBytes, path, ": header length ", header_bytes, " exceeds the limit of ",
            kMaxHeaderBytes, " bytes");

  const std::string_view header_text(reinterpret_cast<const char*>(file.data()) + 8, header_bytes);
  json::Value header;
  try {
    header = json::parse_json(header_text);
  } catch (const Error& error) {
    throw Error(str_cat(path, ": header: ", error.what()));
  }
  GSA_CHECK(header.is_object(), path, ": header must be a JSON object, got ", json::kind_name(header.kind));

  const uint8_t* data = file.data() + 8 + header_bytes;
  const auto data_bytes = static_cast<int64_t>(file_size - 8 - header_bytes);
  MetadataMap parsed_metadata;
  std::vector<TensorEntry> entries;
  for (const auto& [name, value] : header.object_items) {
    if (name == kMetadataKey) {
      parsed_metadata = parse_metadata(path, value);
    } else {
      entries.push_back(parse_entry(path, name, value, data_bytes));
    }
  }
  std::vector<const TensorEntry*> by_offset;
  for (const TensorEntry& entry : entries) by_offset.push_back(&entry);
  check_no_overlaps(path, std::move(by_offset));
  for (const TensorEntry& entry : entries) {
    if (entry.dtype->type == at::kBool) check_bool_bytes(path, entry, data);
  }

  // Everything is valid: copy each tensor out of the mapping into its own storage.
  TensorMap tensors;
  for (const TensorEntry& entry : entries) {
    at::Tensor tensor = at::empty(entry.shape, at::TensorOptions().dtype(entry.dtype->type).device(at::kCPU));
    const auto bytes = static_cast<size_t>(entry.end - entry.begin);
    if (bytes > 0) std::memcpy(tensor.data_ptr(), data + entry.begin, bytes);
    tensors.emplace(entry.name, std::move(tensor));
  }
  if (metadata != nullptr) *metadata = std::move(parsed_metadata);
  return tensors;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const MetadataMap& metadata,
                      const FileOpHook& hook) {
  std::vector<PreparedTensor> prepared;  // TensorMap is ordered: name order
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const std::string where = str_cat(path, ": tensor '", name, "'");
    GSA_CHECK(name != kMetadataKey, path, ": '", kMetadataKey, "' is reserved and cannot name a tensor");
    GSA_CHECK(tensor.defined(), where, ": tensor is undefined");
    GSA_CHECK(tensor.layout() == at::kStrided, where, ": only dense (strided) tensors can be saved, got layout ",
              tensor.layout());
    const DtypeInfo* dtype = dtype_by_type(tensor.scalar_type());
    GSA_CHECK(dtype != nullptr, where, ": dtype ", tensor.scalar_type(), " cannot be saved (supported: ",
              dtype_names(), ")");
    at::Tensor cpu = tensor.to(at::kCPU).resolve_conj().resolve_neg().contiguous();
    const int64_t bytes = cpu.numel() * dtype->itemsize;
    prepared.push_back(PreparedTensor{&name, dtype, std::move(cpu), offset, offset + bytes});
    offset += bytes;
  }
  write_file(path, build_header(prepared, metadata), prepared, hook);
}

}  // namespace gsa
