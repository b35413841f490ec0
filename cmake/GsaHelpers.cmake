# Helpers shared by every folder's CMakeLists.

set(GSA_WARNINGS -Wall -Wextra -Wno-unused-parameter)
if(GSA_WERROR)
  list(APPEND GSA_WARNINGS -Werror)
endif()

# gsa_library(NAME DIR [TORCH] [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# One static library per folder: sources are DIR/src/*.cpp, public headers DIR/include/gsa/DIR/.
# TORCH: the target uses LibTorch; it shares the precompiled LibTorch header built once for gsa_runtime.
function(gsa_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  if(ARG_SOURCES)
    set(srcs ${ARG_SOURCES})
  else()
    file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  endif()
  if(NOT srcs)
    message(FATAL_ERROR "gsa: library ${name} has no sources in ${CMAKE_CURRENT_SOURCE_DIR}/src")
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${GSA_WARNINGS}>)
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  if(ARG_TORCH)
    target_link_libraries(${name} PUBLIC ${TORCH_LIBRARIES})
    gsa_use_torch_pch(${name})
  endif()
endfunction()

# The heavy LibTorch headers are parsed once, in gsa_torch_pch, and reused by every torch target.
function(gsa_use_torch_pch target)
  if(NOT TARGET gsa_torch_pch)
    file(WRITE ${CMAKE_BINARY_DIR}/gsa_torch_pch.cpp "// translation unit that owns the LibTorch PCH\n")
    add_library(gsa_torch_pch STATIC ${CMAKE_BINARY_DIR}/gsa_torch_pch.cpp)
    target_link_libraries(gsa_torch_pch PUBLIC ${TORCH_LIBRARIES})
    target_compile_options(gsa_torch_pch PRIVATE ${GSA_WARNINGS})
    target_precompile_headers(gsa_torch_pch PRIVATE
      <ATen/ATen.h> <torch/types.h> <algorithm> <cstdint> <functional> <map> <memory> <string>
      <unordered_map> <utility> <vector>)
  endif()
  if(NOT target STREQUAL "gsa_torch_pch")
    target_precompile_headers(${target} REUSE_FROM gsa_torch_pch)
  endif()
endfunction()
