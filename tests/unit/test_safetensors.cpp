// safetensors reader/writer: round trips (every dtype bit-exactly, 0-dim, empty, metadata), the written layout,
// strict rejection of truncated or malformed files, and interop with the Python `safetensors` package.
#include <ftw.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gsa/runtime/json_reader.h"
#include "gsa/runtime/error.h"
#include "gsa/runtime/safetensors.h"

namespace gsa {
namespace {

// POSIX file helpers: std::filesystem::remove_all crashes in executables linked with pip libtorch.so, which
// exports its own copies of the std::filesystem free functions.
bool file_exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

void remove_tree(const std::string& dir) {
  auto remove_entry = [](const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); };
  ::nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void make_directories(const std::string& dir) {
  for (size_t slash = dir.find('/', 1); ; slash = dir.find('/', slash + 1)) {
    const std::string prefix = dir.substr(0, slash);
    ASSERT_TRUE(::mkdir(prefix.c_str(), 0755) == 0 || errno == EEXIST) << prefix << ": " << std::strerror(errno);
    if (slash == std::string::npos) return;
  }
}

// A fresh directory per test case (ctest runs cases as separate processes, possibly in parallel).
std::string test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = std::string(GSA_BINARY_DIR) + "/test_tmp/safetensors/" + info->test_suite_name() + "." +
                          info->name();
  remove_tree(dir);
  make_directories(dir);
  return dir;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string length_prefix(uint64_t length) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out;
}

// A file with the given header text and data section.
std::string write_raw(const std::string& dir, const std::string& header, const std::string& data = "") {
  const std::string path = dir + "/raw.safetensors";
  write_bytes(path, length_prefix(header.size()) + header + data);
  return path;
}

// The message load_safetensors throws for path (a test failure if it does not throw).
std::string load_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "load_safetensors(" << path << ") did not throw";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Same dtype, shape and bytes (floats compared as raw bits, so NaN payloads and -0 count).
::testing::AssertionResult bits_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) {
    return ::testing::AssertionFailure() << a.scalar_type() << a.sizes() << " vs " << b.scalar_type() << b.sizes();
  }
  auto as_bits = [](const at::Tensor& t) {
    switch (t.element_size()) {
      case 8: return t.contiguous().view(at::kLong);
      case 4: return t.contiguous().view(at::kInt);
      case 2: return t.contiguous().view(at::kShort);
      default: return t.contiguous().view(at::kByte);
    }
  };
  if (!at::equal(as_bits(a), as_bits(b))) return ::testing::AssertionFailure() << "bytes differ";
  return ::testing::AssertionSuccess();
}

TensorMap every_dtype() {
  at::manual_seed(0);
  TensorMap t;
  t["f64"] = at::randn({3, 5}, at::kDouble);
  t["f64"].view(-1).slice(0, 0, 4).copy_(at::tensor({NAN, INFINITY, -0.0, 4.9e-324}, at::kDouble));
  t["f32"] = at::randn({2, 3, 4}, at::kFloat);
  t["f32"].view(-1).slice(0, 0, 4).copy_(at::tensor({NAN, -INFINITY, -0.0f, 1e-45f}, at::kFloat));
  // Every 16-bit pattern class (NaN payloads, subnormals, infinities) via random raw bits.
  t["f16"] = at::randint(-32768, 32768, {64, 8}, at::kShort).view(at::kHalf);
  t["bf16"] = at::randint(-32768, 32768, {64, 8}, at::kShort).view(at::kBFloat16);
  t["i64"] = at::randint(-(int64_t{1} << 62), int64_t{1} << 62, {7}, at::kLong);
  t["i32"] = at::randint(-(int64_t{1} << 31), int64_t{1} << 31, {3, 3}, at::kInt);
  t["i16"] = at::randint(-32768, 32768, {5}, at::kShort);
  t["i8"] = at::randint(-128, 128, {4, 2}, at::kChar);
  t["u8"] = at::randint(0, 256, {9}, at::kByte);
  t["bool"] = at::randint(0, 2, {2, 5}, at::kLong).to(at::kBool);
  return t;
}

void expect_same_maps(const TensorMap& expected, const TensorMap& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (const auto& [name, tensor] : expected) {
    ASSERT_EQ(actual.count(name), 1u) << name;
    EXPECT_TRUE(bits_equal(tensor, actual.at(name))) << name;
    EXPECT_TRUE(actual.at(name).is_contiguous()) << name;
    EXPECT_TRUE(actual.at(name).device().is_cpu()) << name;
  }
}

TEST(Safetensors, RoundTripsEveryDtypeBitExactly) {
  const std::string path = test_dir() + "/all.safetensors";
  const TensorMap tensors = every_dtype();
  save_safetensors(path, tensors);
  expect_same_maps(tensors, load_safetensors(path));
}

TEST(Safetensors, RoundTripsZeroDimAndEmptyTensors) {
  const std::string path = test_dir() + "/edge.safetensors";
  TensorMap tensors;
  tensors["scalar_bf16"] = at::scalar_tensor(1.5, at::kBFloat16);
  tensors["scalar_i64"] = at::scalar_tensor(-7, at::kLong);
  tensors["empty"] = at::empty({0}, at::kFloat);
  tensors["empty_3d"] = at::empty({3, 0, 2}, at::kHalf);
  tensors["z_after_empty"] = at::arange(4, at::kInt);
  save_safetensors(path, tensors);
  const TensorMap loaded = load_safetensors(path);
  expect_same_maps(tensors, loaded);
  EXPECT_EQ(loaded.at("scalar_bf16").dim(), 0);
}

TEST(Safetensors, SavesNonContiguousTensorsByValue) {
  const std::string path = test_dir() + "/views.safetensors";
  const at::Tensor base = at::arange(24, at::kFloat).reshape({4, 6});
  TensorMap tensors{{"transposed", base.t()},
                    {"sliced", base.slice(1, 2, 5)},
                    {"expanded", at::arange(3, at::kLong).expand({2, 3})},
                    {"negated_view", at::_neg_view(base)}};
  save_safetensors(path, tensors);
  const TensorMap loaded = load_safetensors(path);
  for (const auto& [name, tensor] : tensors) EXPECT_TRUE(at::equal(tensor, loaded.at(name))) << name;
}

TEST(Safetensors, RoundTripsMetadataAndOddNames) {
  const std::string path = test_dir() + "/meta.safetensors";
  const MetadataMap metadata{{"format", "pt"},
                             {"quote\"back\\slash", "line\nbreak\ttab\x01 control"},
                             {"unicode", "\xc3\xa9 \xe6\xbc\xa2 \xf0\x9f\x99\x82"},
                             {"empty", ""}};
  const TensorMap tensors{{"model.layers.0.\"odd\"\\name", at::ones({2}, at::kFloat)}};
  save_safetensors(path, tensors, metadata);
  MetadataMap loaded_metadata{{"stale", "entry"}};
  expect_same_maps(tensors, load_safetensors(path, &loaded_metadata));
  EXPECT_EQ(loaded_metadata, metadata);
}

TEST(Safetensors, WritesTheReferenceLayout) {
  const std::string dir = test_dir();
  const std::string path = dir + "/layout.safetensors";
  TensorMap tensors{{"b", at::tensor({1.0f, 2.0f})}, {"a", at::tensor({int64_t{3}})}};
  save_safetensors(path, tensors, {{"k", "v"}});
  EXPECT_FALSE(file_exists(path + ".tmp"));
  const std::string bytes = read_bytes(path);
  const std::string expected_header =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  const size_t padded = (expected_header.size() + 7) / 8 * 8;
  ASSERT_EQ(bytes.size(), 8 + padded + 16);
  EXPECT_EQ(bytes.substr(0, 8), length_prefix(padded));
  EXPECT_EQ(bytes.substr(8, padded), expected_header + std::string(padded - expected_header.size(), ' '));
  int64_t a_value = 0;
  std::memcpy(&a_value, bytes.data() + 8 + padded, 8);
  EXPECT_EQ(a_value, 3);

  // No tensors, no metadata: "{}" padded to 8 bytes.
  save_safetensors(path, {});
  EXPECT_EQ(read_bytes(path), length_prefix(8) + "{}      ");
  EXPECT_TRUE(load_safetensors(path).empty());
}

TEST(Safetensors, OverwritesAnExistingFileAndAStaleTmp) {
  const std::string path = test_dir() + "/over.safetensors";
  save_safetensors(path, {{"x", at::zeros({100}, at::kFloat)}});
  write_bytes(path + ".tmp", "left over by a crash");
  save_safetensors(path, {{"y", at::ones({1}, at::kFloat)}});
  EXPECT_FALSE(file_exists(path + ".tmp"));
  const TensorMap loaded = load_safetensors(path);
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded.count("y"), 1u);
}

TEST(Safetensors, SaveRejectsBadInputs) {
  const std::string dir = test_dir();
  const std::string path = dir + "/bad.safetensors";
  auto save_error = [&](const std::string& target, const TensorMap& tensors) -> std::string {
    try {
      save_safetensors(target, tensors);
    } catch (const Error& error) {
      return error.what();
    }
    return "(no error)";
  };
  EXPECT_TRUE(contains(save_error(path, {{"__metadata__", at::ones({1})}}), "reserved"));
  std::string message = save_error(path, {{"c", at::ones({2}, at::kComplexFloat)}});
  EXPECT_TRUE(contains(message, "tensor 'c'") && contains(message, "cannot be saved")) << message;
  EXPECT_TRUE(contains(save_error(path, {{"u", at::Tensor()}}), "tensor 'u': tensor is undefined"));
  message = save_error(dir + "/no/such/dir/x.safetensors", {{"x", at::ones({1})}});
  EXPECT_TRUE(contains(message, dir + "/no/such/dir/x.safetensors")) << message;
  EXPECT_FALSE(file_exists(path));
}

TEST(Safetensors, MissingFileErrorNamesThePath) {
  const std::string path = test_dir() + "/absent.safetensors";
  const std::string message = load_error(path);
  EXPECT_TRUE(contains(message, path) && contains(message, "cannot open")) << message;
}

TEST(Safetensors, RejectsTruncatedFiles) {
  const std::string dir = test_dir();
  const std::string good = dir + "/good.safetensors";
  save_safetensors(good, every_dtype(), {{"format", "pt"}});
  const std::string bytes = read_bytes(good);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes.data(), 8);
  const std::vector<size_t> cuts{0, 1, 7, 8, 9, 8 + header_bytes / 2, 8 + header_bytes - 1, 8 + header_bytes,
                                 8 + header_bytes + 3, bytes.size() / 2, bytes.size() - 1};
  for (const size_t cut : cuts) {
    const std::string path = dir + "/cut.safetensors";
    write_bytes(path, bytes.substr(0, cut));
    const std::string message = load_error(path);
    EXPECT_TRUE(contains(message, path + ": ")) << "cut at " << cut << ": " << message;
    EXPECT_TRUE(contains(message, "truncated")) << "cut at " << cut << ": " << message;
  }
}

TEST(Safetensors, RejectsHeaderLengthLargerThanFile) {
  const std::string dir = test_dir();
  const std::string path = dir + "/long.safetensors";
  write_bytes(path, length_prefix(uint64_t{1} << 40) + "{}");
  std::string message = load_error(path);
  EXPECT_TRUE(contains(message, "header length 1099511627776 is larger than the 2 bytes")) << message;
  write_bytes(path, length_prefix(3) + "{}");
  message = load_error(path);
  EXPECT_TRUE(contains(message, "header length 3 is larger than the 2 bytes")) << message;
}

TEST(Safetensors, RejectsMalformedJson) {
  const std::string dir = test_dir();
  const std::vector<std::string> bad_headers{
      "",        "{",         "{\"a\":}",    "{\"a\" 1}",  "{\"a\":1,}", "{}x",         "{'a':1}",
      "{\"a",    "{\"\\q\":1}", "{\"\\ud800\":1}", "{\"a\":01}", "{\"a\":-}", "{\"a\":tru}", "{\"a\x01\":1}",
      "{\"\xff\":1}", "{\"a\":[1 2]}", "{\"a\":1,\"a\":2}", std::string(200, '[')};
  for (const std::string& header : bad_headers) {
    const std::string path = write_raw(dir, header);
    const std::string message = load_error(path);
    EXPECT_TRUE(contains(message, path + ": header: invalid JSON at byte")) << header << " -> " << message;
  }
  const std::string message = load_error(write_raw(dir, "[1, 2]  "));
  EXPECT_TRUE(contains(message, "header must be a JSON object, got array")) << message;
}

TEST(Safetensors, RejectsUnknownDtype) {
  const std::string path = write_raw(test_dir(), R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})",
                                     std::string(4, '\0'));
  const std::string message = load_error(path);
  EXPECT_TRUE(contains(message, path + ": tensor 'w': unknown dtype 'F7' (supported: F64, F32")) << message;
}

TEST(Safetensors, RejectsOffsetsThatDoNotMatchTheShape) {
  const std::string path = write_raw(test_dir(), R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})",
                                     std::string(16, '\0'));
  EXPECT_EQ(load_error(path), path + ": tensor 'x': data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs 16");
}

TEST(Safetensors, RejectsOffsetsOutsideTheData) {
  const std::string dir = test_dir();
  std::string path = write_raw(dir, R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", "1234");
  std::string message = load_error(path);
  EXPECT_TRUE(contains(message, "tensor 'x': data_offsets [2, 6] run past the end of the data section (4 bytes"))
      << message;
  path = write_raw(dir, R"({"x":{"dtype":"U8","shape":[0],"data_offsets":[3,1]}})", "1234");
  message = load_error(path);
  EXPECT_TRUE(contains(message, "data_offsets [3, 1] end before they begin")) << message;
  path = write_raw(dir, R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4,8]}})", "1234");
  EXPECT_TRUE(contains(load_error(path), "must be [begin, end], got 3 values"));
}

TEST(Safetensors, RejectsOverlappingTensors) {
  const std::string dir = test_dir();
  const std::string data(24, '\0');
  const std::string path = write_raw(dir,
                                     R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                     R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                     data);
  EXPECT_EQ(load_error(path), path + ": tensors 'a' data_offsets [0, 16] and 'b' data_offsets [8, 24] overlap");
  // Adjacent ranges, and empty ranges anywhere inside the data, are fine.
  const std::string ok = write_raw(dir,
                                   R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                   R"("e":{"dtype":"F32","shape":[0,4],"data_offsets":[8,8]},)"
                                   R"("b":{"dtype":"F64","shape":[],"data_offsets":[16,24]}})",
                                   data);
  const TensorMap loaded = load_safetensors(ok);
  EXPECT_EQ(loaded.size(), 3u);
  EXPECT_EQ(loaded.at("b").dim(), 0);
}

TEST(Safetensors, RejectsMissingOrMistypedFields) {
  const std::string dir = test_dir();
  struct Case {
    std::string header;
    std::string expected;
  };
  const std::vector<Case> cases{
      {R"({"x":{"shape":[1],"data_offsets":[0,1]}})", "tensor 'x': missing field 'dtype'"},
      {R"({"x":{"dtype":"U8","data_offsets":[0,1]}})", "tensor 'x': missing field 'shape'"},
      {R"({"x":{"dtype":"U8","shape":[1]}})", "tensor 'x': missing field 'data_offsets'"},
      {R"({"x":{"dtype":8,"shape":[1],"data_offsets":[0,1]}})", "field 'dtype' must be a string, got integer"},
      {R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "field 'shape' must hold non-negative integers"},
      {R"({"x":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", "field 'shape' must hold non-negative integers"},
      {R"({"x":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})", "field 'shape' must be an array"},
      {R"({"x":[1]})", "tensor 'x': entry must be an object, got array"},
      {R"({"x":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}})", "more bytes than fit"},
      {R"({"__metadata__":{"k":1}})", "__metadata__ 'k' must be a string, got integer"},
      {R"({"__metadata__":["k"]})", "__metadata__ must be an object of strings, got array"},
  };
  for (const Case& c : cases) {
    const std::string path = write_raw(dir, c.header, "1");
    const std::string message = load_error(path);
    EXPECT_TRUE(contains(message, path + ": ") && contains(message, c.expected)) << c.header << " -> " << message;
  }
}

TEST(Safetensors, RejectsBoolBytesOtherThanZeroOrOne) {
  const std::string path =
      write_raw(test_dir(), R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x01\x00\x07", 3));
  EXPECT_EQ(load_error(path), path + ": tensor 'm': BOOL byte 2 is 7, expected 0 or 1");
}

TEST(JsonReader, ParsesValuesEscapesAndNumbers) {
  const json::Value v = json::parse_json(
      " {\"s\": \"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude42\", \"n\": [0, -12, 9223372036854775807, 1.5e3],"
      " \"o\": {\"t\": true, \"f\": false, \"z\": null}} \n");
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.find("s")->string_value, "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x99\x82");
  const auto& numbers = v.find("n")->array_items;
  ASSERT_EQ(numbers.size(), 4u);
  EXPECT_EQ(numbers[1].int_value, -12);
  EXPECT_EQ(numbers[2].int_value, INT64_MAX);
  EXPECT_EQ(numbers[3].kind, json::Value::Kind::kFloat);
  EXPECT_EQ(numbers[3].float_value, 1500.0);
  EXPECT_TRUE(v.find("o")->find("t")->bool_value);
  EXPECT_EQ(v.find("o")->find("z")->kind, json::Value::Kind::kNull);
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_THROW(json::parse_json("9223372036854775808"), Error);
  const std::string odd = "q\"b\\s\n\x01\xc3\xa9";
  EXPECT_EQ(json::parse_json(json::quote_json(odd)).string_value, odd);
}

// ---------------------------------------------------------------------------------------------------------
// Interop with the Python safetensors package (an implementation no one here wrote).

bool python_has_safetensors() {
  return std::system(GSA_PYTHON " -c 'import safetensors.torch, torch' > /dev/null 2>&1") == 0;
}

int run_python(const std::string& dir, const std::string& script, const std::string& args) {
  const std::string script_path = dir + "/script.py";
  write_bytes(script_path, script);
  return std::system((std::string(GSA_PYTHON) + " " + script_path + " " + args).c_str());
}

TEST(SafetensorsInterop, ReadsFilesWrittenByPython) {
  if (!python_has_safetensors()) GTEST_SKIP() << "python3 lacks safetensors or torch";
  const std::string dir = test_dir();
  const std::string path = dir + "/py.safetensors";
  const std::string script = R"(import sys, torch
from safetensors.torch import save_file
t = {
    "f64": torch.arange(6, dtype=torch.float64).reshape(2, 3) / 3,
    "f32": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8 - 0.5,
    "f16": torch.arange(0, 65536, 263, dtype=torch.int32).to(torch.int16).view(torch.float16),
    "bf16": torch.arange(0, 65536, 257, dtype=torch.int32).to(torch.int16).view(torch.bfloat16),
    "i64": torch.tensor([-(2**62), -1, 0, 2**62 + 5]),
    "i32": torch.tensor([[-(2**31), 7], [2**31 - 1, 0]], dtype=torch.int32),
    "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
    "i8": torch.tensor([-128, 127, 3], dtype=torch.int8),
    "u8": torch.tensor([0, 255], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 3),
}
save_file(t, sys.argv[1], metadata={"format": "pt", "note": 'quote " and \\ backslash'})
)";
  ASSERT_EQ(run_python(dir, script, path), 0);
  MetadataMap metadata;
  const TensorMap loaded = load_safetensors(path, &metadata);
  EXPECT_EQ(metadata, (MetadataMap{{"format", "pt"}, {"note", "quote \" and \\ backslash"}}));
  TensorMap expected;
  expected["f64"] = at::arange(6, at::kDouble).reshape({2, 3}) / 3;
  expected["f32"] = at::arange(12, at::kFloat).reshape({3, 4}) / 8 - 0.5;
  expected["f16"] = at::arange(0, 65536, 263, at::kInt).to(at::kShort).view(at::kHalf);
  expected["bf16"] = at::arange(0, 65536, 257, at::kInt).to(at::kShort).view(at::kBFloat16);
  expected["i64"] = at::tensor({-(int64_t{1} << 62), int64_t{-1}, int64_t{0}, (int64_t{1} << 62) + 5});
  expected["i32"] = at::tensor({INT32_MIN, 7, INT32_MAX, 0}, at::kInt).reshape({2, 2});
  expected["i16"] = at::tensor({-32768, 32767}, at::kShort);
  expected["i8"] = at::tensor({-128, 127, 3}, at::kChar);
  expected["u8"] = at::tensor({0, 255}, at::kByte);
  expected["bool"] = at::tensor({1, 0, 1}, at::kByte).to(at::kBool);
  expected["scalar"] = at::scalar_tensor(3.5, at::kFloat);
  expected["empty"] = at::zeros({0, 3}, at::kFloat);
  expect_same_maps(expected, loaded);
}

TEST(SafetensorsInterop, PythonReadsOurFilesBack) {
  if (!python_has_safetensors()) GTEST_SKIP() << "python3 lacks safetensors or torch";
  const std::string dir = test_dir();
  TensorMap tensors = every_dtype();
  tensors["scalar"] = at::scalar_tensor(-2.0, at::kBFloat16);
  tensors["empty"] = at::empty({2, 0}, at::kDouble);
  const MetadataMap metadata{{"format", "pt"}, {"step", "12"}, {"note", "tab\there \xc3\xa9"}};
  save_safetensors(dir + "/ours.safetensors", tensors, metadata);
  // Python (the reference Rust parser underneath) loads our file and writes its contents back out.
  const std::string script = R"(import sys
from safetensors import safe_open
from safetensors.torch import save_file
with safe_open(sys.argv[1], framework="pt") as f:
    metadata = f.metadata()
    tensors = {name: f.get_tensor(name) for name in f.keys()}
save_file(tensors, sys.argv[2], metadata=metadata)
)";
  ASSERT_EQ(run_python(dir, script, dir + "/ours.safetensors " + dir + "/theirs.safetensors"), 0);
  MetadataMap loaded_metadata;
  expect_same_maps(tensors, load_safetensors(dir + "/theirs.safetensors", &loaded_metadata));
  EXPECT_EQ(loaded_metadata, metadata);
}

}  // namespace
}  // namespace gsa
