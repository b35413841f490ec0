// Minimal repro for racecheck's union_level reports (session 13): 4 "heads" of 128 threads each synchronise on
// their own counted named barrier (bar.sync 1 + h, 128) a head-dependent number of times, then the whole CTA runs
// union_level's pattern -- lane 31 of each warp writes a warp total, __syncthreads(), every thread reads the totals
// of the warps below it. Race-free by construction (bar.sync 0 orders all 512 threads). If racecheck reports
// hazards here between threads of different heads, and none with equal counts (argv[1] = "same"), the selection
// kernels' reports are the tool's, not races.
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__global__ void kernel(int* out, int same_rounds) {
  __shared__ int head_words[4][4];
  __shared__ int warp_total[16];
  const int h = threadIdx.x / 128, t = threadIdx.x % 128, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int rounds = same_rounds ? 4 : 2 + 3 * h;  // head-dependent like the early-exit select
  int acc = 0;
  for (int r = 0; r < rounds; ++r) {  // each head: write, barrier, read, on its own named barrier
    if (lane == 0) head_words[h][t / 32] = r + warp;
    named_barrier_sync(1 + h, 128);
    for (int w = 0; w < 4; ++w) acc += head_words[h][w];
    named_barrier_sync(1 + h, 128);
  }
  __syncthreads();
  for (int level = 0; level < 3; ++level) {  // union_level's pattern
    if (lane == 31) warp_total[warp] = acc + level;
    __syncthreads();
    int before = 0;
    for (int w = 0; w < warp; ++w) before += warp_total[w];
    __syncthreads();
    acc += before;
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

int main(int argc, char** argv) {
  const int same = argc > 1 && std::strcmp(argv[1], "same") == 0;
  int* out;
  cudaMalloc(&out, 8 * 512 * sizeof(int));
  kernel<<<8, 512>>>(out, same);
  const cudaError_t e = cudaDeviceSynchronize();
  std::printf("rounds %s: %s\n", same ? "equal across heads" : "head-dependent", cudaGetErrorString(e));
  cudaFree(out);
  return e == cudaSuccess ? 0 : 1;
}
