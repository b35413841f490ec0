// What accumulating dq inside the key pass would cost in fp32 reductions, before writing that kernel
// (docs/kernels-notes.md, "Next (after the twenty-first session)"). FlashAttention-3's backward adds each (key tile,
// query tile) pair's dQ partial -- 64 query rows x D fp32 -- into a global workspace; the pass would do that once per
// visited pair: ~4.6M pairs (150 GB of adds) at 128K tokens with 8 KV heads and 64-row tiles.
//
// Three ways, each over the same scattered pairs (a pair's 64 rows are 4 runs of 16 consecutive rows, as a query
// tile of 16 positions x 4 query heads lies in [B, Hq, Tq, D]), one warpgroup a CTA holding the partial in the wgmma
// m64nD accumulator layout:
//   red1   one `red.global.add.f32` per value (what atomicAdd on each register compiles to)
//   red2   one `red.global.add.v2.f32` per register pair (sm_90)
//   bulk   the partial staged in shared memory, then `cp.reduce.async.bulk.global.shared::cta.add.f32` per 16-row run
// Prints each way's time and fp32 reduction bandwidth, and checks the workspace against the expected sums.
//
// Build and run (one H200): nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/dq_probe docs/experiments/s21-dq-atomics-probe.cu
//   && /tmp/dq_probe [pairs=400000] [query_tiles=69632]
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

constexpr int kD = 128;              // head dim
constexpr int kRows = 64;            // query rows a pair adds
constexpr int kRunRows = 16;         // consecutive rows of one query head in a tile
constexpr int kThreads = 128;        // one warpgroup
constexpr int kValues = kRows * kD / kThreads;  // 64 accumulator registers a thread

#define CHECK(x)                                                                              \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

// Row r of a pair's tile in the workspace: run r / 16 of the tile's 4 heads, each run 16 rows long; the workspace
// holds query_tiles x 64 rows, run h of tile t at rows (h * query_tiles + t) * 16 (the heads' rows lie apart).
__device__ __forceinline__ int64_t workspace_row(int64_t tile, int r, int64_t query_tiles) {
  return (int64_t(r / kRunRows) * query_tiles + tile) * kRunRows + r % kRunRows;
}

// The query tile pair i adds to: scattered, as key-tile CTAs reach query tiles in no common order.
__device__ __forceinline__ int64_t pair_tile(int64_t i, int64_t query_tiles) { return (i * 7919) % query_tiles; }

// Thread t's accumulator value v in the m64nD layout: row 16 (t / 32) + (t % 32) / 4 + 8 h, column 8 j + 2 (t % 4) + e,
// v = 4 j + 2 h + e. Every value is 1: the workspace must end at the count of pairs that hit each row.
__device__ __forceinline__ void value_place(int t, int v, int& row, int& col) {
  const int j = v / 4, h = (v / 2) % 2, e = v % 2;
  row = 16 * (t / 32) + (t % 32) / 4 + 8 * h;
  col = 8 * j + 2 * (t % 4) + e;
}

// kPairs = false: red1 (atomicAdd per value); true: red2 (one red.global.add.v2.f32 per register pair).
template <bool kPairs>
__global__ void red_kernel(float* ws, int64_t pairs, int64_t query_tiles) {
  float acc[kValues];
  for (int v = 0; v < kValues; ++v) acc[v] = 1.f;
  for (int64_t i = blockIdx.x; i < pairs; i += gridDim.x) {
    const int64_t tile = pair_tile(i, query_tiles);
#pragma unroll
    for (int v = 0; v < kValues; v += kPairs ? 2 : 1) {
      int row, col;
      value_place(threadIdx.x, v, row, col);
      float* p = ws + workspace_row(tile, row, query_tiles) * kD + col;
      if constexpr (kPairs) {
        asm volatile("red.global.add.v2.f32 [%0], {%1, %2};" ::"l"(p), "f"(acc[v]), "f"(acc[v + 1]) : "memory");
      } else {
        atomicAdd(p, acc[v]);
      }
    }
  }
}

__global__ void bulk_kernel(float* ws, int64_t pairs, int64_t query_tiles) {
  extern __shared__ __align__(128) float tile_smem[];  // [64][kD]
  float acc[kValues];
  for (int v = 0; v < kValues; ++v) acc[v] = 1.f;
  for (int64_t i = blockIdx.x; i < pairs; i += gridDim.x) {
    const int64_t tile = pair_tile(i, query_tiles);
    if (threadIdx.x == 0) asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");  // smem free again
    __syncthreads();
#pragma unroll
    for (int v = 0; v < kValues; v += 2) {
      int row, col;
      value_place(threadIdx.x, v, row, col);
      *reinterpret_cast<float2*>(tile_smem + row * kD + col) = make_float2(acc[v], acc[v + 1]);
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the writes, visible to the bulk copy
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int run = 0; run < kRows / kRunRows; ++run) {
        float* dst = ws + workspace_row(tile, run * kRunRows, query_tiles) * kD;
        const uint32_t src = static_cast<uint32_t>(__cvta_generic_to_shared(tile_smem + run * kRunRows * kD));
        asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;" ::"l"(dst),
                     "r"(src), "r"(kRunRows * kD * 4)
                     : "memory");
      }
      asm volatile("cp.async.bulk.commit_group;" ::: "memory");
    }
  }
  if (threadIdx.x == 0) asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
}

int main(int argc, char** argv) {
  const int64_t pairs = argc > 1 ? std::atoll(argv[1]) : 400000;
  // 8,704 query tiles a KV head (128K tokens, 4 query heads a KV head, 64 rows a tile) x 8 KV heads: 2.3 GB of fp32.
  const int64_t query_tiles = argc > 2 ? std::atoll(argv[2]) : 69632;
  if (pairs <= 0 || query_tiles <= 0) {
    std::fprintf(stderr, "usage: %s [pairs > 0] [query_tiles > 0]\n", argv[0]);
    return 2;
  }
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const size_t ws_floats = size_t(query_tiles) * kRows * kD;
  float* ws = nullptr;
  CHECK(cudaMalloc(&ws, ws_floats * sizeof(float)));
  CHECK(cudaFuncSetAttribute(bulk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kRows * kD * 4));
  // Expected count per tile: how many of the pairs hit it.
  std::vector<int> hits(query_tiles, 0);
  for (int64_t i = 0; i < pairs; ++i) ++hits[(i * 7919) % query_tiles];
  std::printf("%lld pairs of %d x %d fp32 (%.1f GB of adds) over %lld query tiles, %d SMs\n", (long long)pairs, kRows,
              kD, pairs * kRows * kD * 4.0 / 1e9, (long long)query_tiles, sms);
  const char* names[3] = {"red1", "red2", "bulk"};
  for (int way = 0; way < 3; ++way) {
    for (int ctas_per_sm : {1, 2, 4}) {
      CHECK(cudaMemset(ws, 0, ws_floats * sizeof(float)));
      cudaEvent_t start, stop;
      CHECK(cudaEventCreate(&start));
      CHECK(cudaEventCreate(&stop));
      const int grid = sms * ctas_per_sm;
      CHECK(cudaEventRecord(start));
      if (way == 0) red_kernel<false><<<grid, kThreads>>>(ws, pairs, query_tiles);
      if (way == 1) red_kernel<true><<<grid, kThreads>>>(ws, pairs, query_tiles);
      if (way == 2) bulk_kernel<<<grid, kThreads, kRows * kD * 4>>>(ws, pairs, query_tiles);
      CHECK(cudaEventRecord(stop));
      CHECK(cudaEventSynchronize(stop));
      CHECK(cudaGetLastError());
      float ms = 0.f;
      CHECK(cudaEventElapsedTime(&ms, start, stop));
      // Check: tile t's 64 x kD values all equal hits[t] (every value added is 1).
      std::vector<float> host(ws_floats);
      CHECK(cudaMemcpy(host.data(), ws, ws_floats * sizeof(float), cudaMemcpyDeviceToHost));
      int64_t wrong = 0;
      for (int run = 0; run < kRows / kRunRows; ++run)
        for (int64_t t = 0; t < query_tiles; ++t)
          for (int r = 0; r < kRunRows; ++r)
            for (int c = 0; c < kD; ++c)
              wrong += host[((run * query_tiles + t) * kRunRows + r) * kD + c] != float(hits[t]);
      std::printf("%s, %d CTAs an SM: %.3f ms, %.0f GB/s of fp32 adds, %.2f ns a pair, %lld wrong values\n",
                  names[way], ctas_per_sm, ms, pairs * kRows * kD * 4.0 / (ms * 1e6), ms * 1e6 / pairs,
                  (long long)wrong);
      CHECK(cudaEventDestroy(start));
      CHECK(cudaEventDestroy(stop));
    }
  }
  CHECK(cudaFree(ws));
  return 0;
}
