// The text of configs/demo.pbtxt, compiled in by configs/CMakeLists.txt (embedded_demo_config.cpp.in).
#pragma once

namespace gsa::config_detail {

extern const char kEmbeddedDemoConfigText[];

}  // namespace gsa::config_detail
