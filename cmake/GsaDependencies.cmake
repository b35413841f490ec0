# Finds the whole stack in the order the pip LibTorch needs (DESIGN.md section 2, "Known traps").

# ccache, when present. PCH needs the sloppiness settings or every PCH user misses the cache.
find_program(GSA_CCACHE ccache)
if(GSA_CCACHE)
  set(_gsa_launcher ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime ${GSA_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_gsa_launcher})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${_gsa_launcher})
endif()

# LibTorch comes from the Python install (pip torch==2.11.0 here, the image's Python on GPU machines).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
if(NOT Torch_DIR)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -c "import torch; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _gsa_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET RESULT_VARIABLE _gsa_torch_rc)
  if(NOT _gsa_torch_rc EQUAL 0)
    message(FATAL_ERROR "gsa: python3 cannot import torch; install it with 'python3 -m pip install torch==2.11.0'")
  endif()
  list(APPEND CMAKE_PREFIX_PATH ${_gsa_torch_prefix})
endif()

find_package(Threads REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)
# Protobuf BEFORE Torch: pip torch's Caffe2 config otherwise defines an empty protobuf::libprotobuf target.
find_package(Protobuf REQUIRED)
# pip torch's cuda.cmake otherwise asks nvcc 13 for compute_50, which it no longer supports.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "9.0")
endif()
find_package(Torch REQUIRED)
find_package(Boost REQUIRED)
if(GSA_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# CUDA: our kernels compile whenever nvcc is there (also in CI, where they cannot run).
set(GSA_HAVE_CUDA OFF)
if(GSA_ENABLE_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(GSA_HAVE_CUDA ON)
    find_path(GSA_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
    find_library(GSA_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu)
  endif()
endif()
message(STATUS "gsa: CUDA kernels ${GSA_HAVE_CUDA}; NCCL ${GSA_NCCL_INCLUDE} ${GSA_NCCL_LIB}")

# pip torch bundles an older copy of the protobuf headers in torch/include: translation units that see
# protobuf get a shim folder holding the system google/ placed BEFORE the torch includes.
set(GSA_PROTOBUF_SHIM ${CMAKE_BINARY_DIR}/protobuf_shim)
file(MAKE_DIRECTORY ${GSA_PROTOBUF_SHIM})
if(NOT EXISTS ${GSA_PROTOBUF_SHIM}/google)
  file(CREATE_LINK ${Protobuf_INCLUDE_DIRS}/google ${GSA_PROTOBUF_SHIM}/google SYMBOLIC)
endif()
