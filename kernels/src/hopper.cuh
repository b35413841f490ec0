// Private to gsa_kernels: Hopper (sm_90a) building blocks of the warp-specialised kernels.
//   - wgmma: a warpgroup's (4 warps, 128 threads) asynchronous tensor-core MMA, m64 x N x k16, fp32
//     accumulators in registers; A from shared memory (wgmma_ss) or from registers (wgmma_rs), B from shared
//     memory, both described by a 64-bit matrix descriptor (smem_desc);
//   - mbarrier: the shared-memory barriers a producer warpgroup and the consumer warpgroups hand pipeline stages
//     over with (cp.async completions arrive on them);
//   - named barriers and setmaxnreg (registers moved from the producer warpgroup to the consumers).
//
// Shared-memory tiles for wgmma use the 128-byte swizzle: a tile of R rows x C columns (16-bit elements) is stored
// as C / 64 column blocks of R rows x 128 bytes, and 16-byte chunk c of a row r sits at chunk c ^ (r & 7) of its
// 128 bytes. Every column block starts on a 1,024-byte boundary (the swizzle is on address bits), so the 8-row
// groups of a block are 1,024 bytes apart. One layout serves both operand kinds: as a K-major operand (Q, K: rows
// = M or N, columns = the reduction) and as an MN-major operand (V as B: rows = the reduction, columns = N; a stored
// dS^T tile as A: rows = the reduction, columns = M).
//
// Accumulator layout (m64nN, thread t of the warpgroup, warp w = t / 32, lane = 4 g + q): d[4 j + e] holds row
// 16 w + g + 8 (e / 2), column 8 j + 2 q + (e % 2): per 8 columns, the m16n8 C fragment of mma.sync. The register
// A operand (m64k16) is the m16n8k16 A fragment of mma.sync for rows 16 w .. 16 w + 15.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace gsa::kernels::detail {

// Byte offset of 16-byte chunk `chunk` (of C / 8) of row `row` in a swizzled tile of `rows` rows (see above).
__device__ __forceinline__ uint32_t swizzle128_offset(int rows, int row, int chunk) {
  return uint32_t((chunk >> 3) * rows * 128 + row * 128 + (((chunk & 7) ^ (row & 7)) << 4));
}

// A wgmma matrix descriptor for a 128-byte-swizzled operand starting at shared address `addr`:
// leading / stride byte offsets as the PTX ISA's canonical layouts define them for the operand's major-ness.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t leading_bytes, uint32_t stride_bytes) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(leading_bytes >> 4) << 16) |
         (uint64_t(stride_bytes >> 4) << 32) | (uint64_t(1) << 62);
}
// K-major operand (rows = M or N, 16 reduction columns read from `addr`): 8-row groups 1,024 bytes apart.
__device__ __forceinline__ uint64_t k_major_desc(uint32_t addr) { return smem_desc(addr, 16, 1024); }
// MN-major operand, B or A (rows = the reduction, 16 of them from `addr`; N or M columns in 64-column blocks
// `block_bytes` apart).
__device__ __forceinline__ uint64_t mn_major_desc(uint32_t addr, uint32_t block_bytes) {
  return smem_desc(addr, block_bytes, 1024);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Keeps the compiler from moving reads or writes of accumulator registers across a wgmma_wait / wgmma issue.
template <int N>
__device__ __forceinline__ void fence_registers(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// d (m64 x N, fp32) (+)= A (m64 x k16, shared, K-major) B (k16 x N, shared, K-major); accumulate = 0 overwrites d.
template <typename T, int N>
__device__ void wgmma_ss(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, int accumulate);
// d (m64 x N, fp32) (+)= A (m64 x k16, registers) B (k16 x N, shared, MN-major); accumulate = 0 overwrites d.
template <typename T, int N>
__device__ void wgmma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b, int accumulate);
// d (m64 x N, fp32) (+)= A (m64 x k16, shared, MN-major: rows = the reduction, M contiguous) B (k16 x N, shared,
// MN-major); accumulate = 0 overwrites d. Both operands transposed (imm-trans-a / -b = 1), 16-bit types only.
template <typename T, int N>
__device__ void wgmma_ss_mn(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, int accumulate);

#define GSA_D8(i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
      "+f"(d[i + 7])
#define GSA_D32 GSA_D8(0), GSA_D8(8), GSA_D8(16), GSA_D8(24)
#define GSA_D64 GSA_D32, GSA_D8(32), GSA_D8(40), GSA_D8(48), GSA_D8(56)
#define GSA_R32                                                                                          \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define GSA_R64                                                                                               \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "      \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, " \
  "%43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

#define GSA_WGMMA_SS_N64(T, PTX_TYPE)                                                                            \
  template <>                                                                                                    \
  __device__ __forceinline__ void wgmma_ss<T, 64>(float (&d)[32], uint64_t desc_a, uint64_t desc_b,             \
                                                  int accumulate) {                                              \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                    \
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE " " GSA_R32                \
                 ", %32, %33, p, 1, 1, 0, 0;\n}\n"                                                               \
                 : GSA_D32                                                                                       \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate));                                                   \
  }
#define GSA_WGMMA_RS(T, PTX_TYPE, N, REGS, DS, PRED, A_AND_B)                                                   \
  template <>                                                                                                     \
  __device__ __forceinline__ void wgmma_rs<T, N>(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b,     \
                                                 int accumulate) {                                                \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                               \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " " REGS ", " A_AND_B    \
                 ", p, 1, 1, 1;\n}\n"                                                                             \
                 : DS                                                                                             \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));                     \
  }

#define GSA_WGMMA_SS_MN(T, PTX_TYPE, N, REGS, DS, PRED, A_AND_B)                                                \
  template <>                                                                                                    \
  __device__ __forceinline__ void wgmma_ss_mn<T, N>(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b,        \
                                                    int accumulate) {                                            \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " PRED ", 0;\n"                                               \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " " REGS ", " A_AND_B    \
                 ", p, 1, 1, 1, 1;\n}\n"                                                                          \
                 : DS                                                                                            \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate));                                                   \
  }

GSA_WGMMA_SS_N64(__nv_bfloat16, "bf16")
GSA_WGMMA_SS_N64(__half, "f16")
GSA_WGMMA_RS(__nv_bfloat16, "bf16", 64, GSA_R32, GSA_D32, "%37", "{%32, %33, %34, %35}, %36")
GSA_WGMMA_RS(__half, "f16", 64, GSA_R32, GSA_D32, "%37", "{%32, %33, %34, %35}, %36")
GSA_WGMMA_RS(__nv_bfloat16, "bf16", 128, GSA_R64, GSA_D64, "%69", "{%64, %65, %66, %67}, %68")
GSA_WGMMA_RS(__half, "f16", 128, GSA_R64, GSA_D64, "%69", "{%64, %65, %66, %67}, %68")
GSA_WGMMA_SS_MN(__nv_bfloat16, "bf16", 64, GSA_R32, GSA_D32, "%34", "%32, %33")
GSA_WGMMA_SS_MN(__half, "f16", 64, GSA_R32, GSA_D32, "%34", "%32, %33")
GSA_WGMMA_SS_MN(__nv_bfloat16, "bf16", 128, GSA_R64, GSA_D64, "%66", "%64, %65")
GSA_WGMMA_SS_MN(__half, "f16", 128, GSA_R64, GSA_D64, "%66", "%64, %65")

#undef GSA_WGMMA_SS_N64
#undef GSA_WGMMA_RS
#undef GSA_WGMMA_SS_MN
#undef GSA_D8
#undef GSA_D32
#undef GSA_D64
#undef GSA_R32
#undef GSA_R64

// mbarriers in shared memory (64-bit, CTA scope), named by their shared-window address (smem_addr).
__device__ __forceinline__ void mbarrier_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarrier_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar)
               : "memory");
}
// Arrives on `bar` once this thread's cp.async copies issued so far have landed (the arrival is counted in the
// barrier's expected count: .noinc).
__device__ __forceinline__ void mbarrier_arrive_on_copies(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the phase of `bar` with the given parity has completed.
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// Generic-proxy writes to shared memory (st.shared, cp.async) made visible to the async proxy (wgmma reads).
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Barrier `id` (1..15) among `threads` threads (a multiple of 32).
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Arrives on barrier `id` without waiting (the `threads` count includes the threads that sync on it).
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

template <int kRegisters>
__device__ __forceinline__ void registers_release() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ __forceinline__ void registers_claim() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

}  // namespace gsa::kernels::detail
