// Activation checkpointing (recompute in backward): y = fn(x) keeps none of fn's intermediate activations, only x;
// the backward pass runs fn(x) again with autograd and back-propagates through it (a reentrant backward). So a
// checkpointed decoder layer holds one [B, T, H] input instead of its attention and MLP activations.
//
// Contract: the result and every gradient equal those of a plain fn(x) (fn is run twice with the same input, so
// it must be deterministic, and its collectives, if any, run again in backward on every rank in the same order).
// Parameters that fn reads get their gradients accumulated into .grad() as in a plain backward (their hooks fire
// once per backward), not through the returned graph. Everything fn refers to must outlive the backward pass.
// Without grad mode it is a plain fn(x).
#pragma once

#include <functional>

#include <ATen/ATen.h>

namespace gsa {

at::Tensor checkpointed(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x);

}  // namespace gsa
