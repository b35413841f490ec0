// Gathering key or value rows by (row, head, position): the keys of the selected chunks that each selective
// query attends to, with a backward that stays fast when many queries select the same keys.
//
// gather_key_rows(x, rows, heads, positions): x [B, H, T, D]; rows, heads and positions are integer tensors that
// broadcast to one index shape S, with values in range (rows < B, heads < H, positions < T; checked on the host
// only where the indices are CPU tensors) -> [S..., D], out[s] = x[rows[s], heads[s], positions[s]].
// Its gradient accumulates in fp32 (fp64 for an fp64 x) with index_add_ (atomic adds on CUDA), then rounds once to x's
// dtype. Why not x.index(): LibTorch's advanced-indexing backward sorts the indices and adds each run of duplicates
// serially, which cost 270 ms per layer on an H200 when 256 suffix queries select the same chunks of a 32K-token
// sequence (gsa bench train --profile); and a bf16 index_add_ would round each of up to hundreds of additions. The
// gradient is not bit-reproducible on CUDA (the order of the atomic adds), as LibTorch's own index_add_.
#pragma once

#include <ATen/ATen.h>

namespace gsa {

at::Tensor gather_key_rows(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& heads,
                           const at::Tensor& positions);

}  // namespace gsa
