// Training-mode batch norm followed by leaky ReLU, over float32 NHWC feature maps,
// as two TensorFlow ops (forward and gradient) for zspace.networks.speed.
//
// TensorFlow runs the pair as four kernels that each sweep the whole map: batch norm
// (statistics, then normalise), leaky ReLU, and in the gradient leaky ReLU's then
// batch norm's (sums, then the input gradient). Here each direction is one sweep for
// the per-channel sums and one element-wise sweep: 3 passes over the map forward
// instead of 5, and 5 backward instead of 8. The gradient recomputes the
// normalised value from x, so nothing but x and the per-channel statistics is kept.
//
// Built by zspace/networks/speed.py on first use (g++ -O3, against the headers of the
// installed TensorFlow); on x86-64 the inner loops are compiled for AVX-512, AVX2
// and plain x86-64 and picked at run time; elsewhere (aarch64...) once, for the
// compiler's default target.

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace zspace {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;

// The x86 clones are x86 only: GCC refuses target("avx512f") on other machines.
#if defined(__x86_64__)
#define ZSPACE_LOOP \
  __attribute__((noinline, target_clones("avx512f", "avx2", "default")))
#else
#define ZSPACE_LOOP __attribute__((noinline))
#endif

// Rows (pixels) per block of the sums: float within a block, double across.
constexpr int64_t kRowsPerBlock = 256;

// Sums of (x - pivot) and (x - pivot)^2 per channel over `rows` rows of `c`.
ZSPACE_LOOP void ShiftedSums(const float* __restrict x, int64_t rows, int64_t c,
                             const float* __restrict pivot, float* __restrict out) {
  float* __restrict sum = out;
  float* __restrict squares = out + c;
  for (int64_t k = 0; k < 2 * c; ++k) out[k] = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < c; ++k) {
      const float d = x[r * c + k] - pivot[k];
      sum[k] += d;
      squares[k] += d * d;
    }
  }
}

// y = leaky_relu(x * scale + shift).
ZSPACE_LOOP void Normalise(const float* __restrict x, int64_t rows, int64_t c,
                           const float* __restrict scale,
                           const float* __restrict shift, float slope,
                           float* __restrict y) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < c; ++k) {
      const float v = x[r * c + k] * scale[k] + shift[k];
      y[r * c + k] = v > 0.0f ? v : v * slope;
    }
  }
}

// Sums of g and g * xhat per channel, g the gradient below the leaky ReLU.
ZSPACE_LOOP void GradientSums(const float* __restrict dy, const float* __restrict x,
                              int64_t rows, int64_t c, const float* __restrict scale,
                              const float* __restrict shift,
                              const float* __restrict mean,
                              const float* __restrict inv_std, float slope,
                              float* __restrict out) {
  float* __restrict sum = out;
  float* __restrict sum_xhat = out + c;
  for (int64_t k = 0; k < 2 * c; ++k) out[k] = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < c; ++k) {
      const float xv = x[r * c + k];
      const float g = xv * scale[k] + shift[k] > 0.0f ? dy[r * c + k]
                                                       : dy[r * c + k] * slope;
      sum[k] += g;
      sum_xhat[k] += g * ((xv - mean[k]) * inv_std[k]);
    }
  }
}

// dx = gamma * inv_std * (g - mean(g) - xhat * mean(g * xhat)).
ZSPACE_LOOP void InputGradient(const float* __restrict dy, const float* __restrict x,
                               int64_t rows, int64_t c, const float* __restrict scale,
                               const float* __restrict shift,
                               const float* __restrict mean,
                               const float* __restrict inv_std,
                               const float* __restrict mean_g,
                               const float* __restrict mean_g_xhat, float slope,
                               float* __restrict dx) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < c; ++k) {
      const float xv = x[r * c + k];
      const float g = xv * scale[k] + shift[k] > 0.0f ? dy[r * c + k]
                                                       : dy[r * c + k] * slope;
      const float xhat = (xv - mean[k]) * inv_std[k];
      dx[r * c + k] = scale[k] * (g - mean_g[k] - xhat * mean_g_xhat[k]);
    }
  }
}

// Runs fn(block, first_row, rows) for every block of rows on the intra-op threads.
template <typename Fn>
void ForBlocks(OpKernelContext* ctx, int64_t rows, int64_t c, const Fn& fn) {
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  tensorflow::Shard(workers->num_threads, workers->workers, blocks,
                    kRowsPerBlock * c * 8, [&](int64_t first, int64_t last) {
                      for (int64_t b = first; b < last; ++b) {
                        const int64_t r0 = b * kRowsPerBlock;
                        fn(b, r0, std::min(rows, r0 + kRowsPerBlock) - r0);
                      }
                    });
}

// Adds up the per-block pairs of sums (block b at partial[2 * c * b]) in double.
void AddBlocks(const std::vector<float>& partial, int64_t c, std::vector<double>* a,
               std::vector<double>* b) {
  a->assign(c, 0.0);
  b->assign(c, 0.0);
  for (size_t offset = 0; offset < partial.size(); offset += 2 * c) {
    for (int64_t k = 0; k < c; ++k) {
      (*a)[k] += partial[offset + k];
      (*b)[k] += partial[offset + c + k];
    }
  }
}

class BatchNormLeakyRelu : public OpKernel {
 public:
  explicit BatchNormLeakyRelu(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("slope", &slope_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x_in = ctx->input(0);
    OP_REQUIRES(ctx, x_in.dims() >= 2 && x_in.NumElements() > 0,
                tensorflow::errors::InvalidArgument("x must be a non-empty map"));
    const int64_t c = x_in.dim_size(x_in.dims() - 1);
    const int64_t rows = x_in.NumElements() / c;
    const float* gamma = ctx->input(1).flat<float>().data();
    const float* beta = ctx->input(2).flat<float>().data();
    Tensor *y_out, *mean_out, *variance_out, *inv_std_out;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_in.shape(), &y_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({c}), &mean_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({c}), &variance_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({c}), &inv_std_out));
    const float* x = x_in.flat<float>().data();
    float* y = y_out->flat<float>().data();
    float* mean = mean_out->flat<float>().data();
    float* variance = variance_out->flat<float>().data();
    float* inv_std = inv_std_out->flat<float>().data();

    // Sums shifted by the first pixel: no cancellation where the mean is large.
    const float* pivot = x;
    const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    std::vector<float> partial(blocks * 2 * c);
    float* sums = partial.data();
    ForBlocks(ctx, rows, c, [=](int64_t b, int64_t r0, int64_t n) {
      ShiftedSums(x + r0 * c, n, c, pivot, sums + b * 2 * c);
    });
    std::vector<double> sum, squares;
    AddBlocks(partial, c, &sum, &squares);
    std::vector<float> scale(c), shift(c);
    for (int64_t k = 0; k < c; ++k) {
      const double shifted_mean = sum[k] / rows;
      const double var = std::max(squares[k] / rows - shifted_mean * shifted_mean, 0.0);
      mean[k] = static_cast<float>(pivot[k] + shifted_mean);
      // Bessel-corrected, as FusedBatchNormV3 reports it.
      variance[k] = static_cast<float>(rows > 1 ? var * rows / (rows - 1) : var);
      inv_std[k] = static_cast<float>(1.0 / std::sqrt(var + epsilon_));
      scale[k] = gamma[k] * inv_std[k];
      shift[k] = beta[k] - mean[k] * scale[k];
    }
    const float* sc = scale.data();
    const float* sh = shift.data();
    const float slope = slope_;
    ForBlocks(ctx, rows, c, [=](int64_t, int64_t r0, int64_t n) {
      Normalise(x + r0 * c, n, c, sc, sh, slope, y + r0 * c);
    });
  }

 private:
  float epsilon_, slope_;
};

class BatchNormLeakyReluGrad : public OpKernel {
 public:
  explicit BatchNormLeakyReluGrad(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("slope", &slope_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy_in = ctx->input(0);
    const Tensor& x_in = ctx->input(1);
    OP_REQUIRES(ctx, dy_in.shape() == x_in.shape(),
                tensorflow::errors::InvalidArgument("dy and x differ in shape"));
    const int64_t c = x_in.dim_size(x_in.dims() - 1);
    const int64_t rows = x_in.NumElements() / c;
    const float* gamma = ctx->input(2).flat<float>().data();
    const float* beta = ctx->input(3).flat<float>().data();
    const float* mean = ctx->input(4).flat<float>().data();
    const float* inv_std = ctx->input(5).flat<float>().data();
    Tensor *dx_out, *dgamma_out, *dbeta_out;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_in.shape(), &dx_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({c}), &dgamma_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({c}), &dbeta_out));
    const float* dy = dy_in.flat<float>().data();
    const float* x = x_in.flat<float>().data();
    float* dx = dx_out->flat<float>().data();

    std::vector<float> scale(c), shift(c);
    for (int64_t k = 0; k < c; ++k) {
      scale[k] = gamma[k] * inv_std[k];
      shift[k] = beta[k] - mean[k] * scale[k];
    }
    const float* sc = scale.data();
    const float* sh = shift.data();
    const float slope = slope_;
    const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    std::vector<float> partial(blocks * 2 * c);
    float* sums = partial.data();
    ForBlocks(ctx, rows, c, [=](int64_t b, int64_t r0, int64_t n) {
      GradientSums(dy + r0 * c, x + r0 * c, n, c, sc, sh, mean, inv_std, slope,
                   sums + b * 2 * c);
    });
    std::vector<double> sum_g, sum_g_xhat;
    AddBlocks(partial, c, &sum_g, &sum_g_xhat);
    float* dgamma = dgamma_out->flat<float>().data();
    float* dbeta = dbeta_out->flat<float>().data();
    std::vector<float> mean_g(c), mean_g_xhat(c);
    for (int64_t k = 0; k < c; ++k) {
      dbeta[k] = static_cast<float>(sum_g[k]);
      dgamma[k] = static_cast<float>(sum_g_xhat[k]);
      mean_g[k] = static_cast<float>(sum_g[k] / rows);
      mean_g_xhat[k] = static_cast<float>(sum_g_xhat[k] / rows);
    }
    const float* mg = mean_g.data();
    const float* mgx = mean_g_xhat.data();
    ForBlocks(ctx, rows, c, [=](int64_t, int64_t r0, int64_t n) {
      InputGradient(dy + r0 * c, x + r0 * c, n, c, sc, sh, mean, inv_std, mg, mgx,
                    slope, dx + r0 * c);
    });
  }

 private:
  float slope_;
};

}  // namespace
}  // namespace zspace

REGISTER_OP("ZspaceBatchNormLeakyRelu")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Output("mean: float")
    .Output("variance: float")
    .Output("inv_std: float")
    .Attr("epsilon: float")
    .Attr("slope: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      const auto channels = c->Dim(c->input(0), -1);
      for (int i = 1; i < 4; ++i) c->set_output(i, c->Vector(channels));
      return absl::OkStatus();
    });

REGISTER_OP("ZspaceBatchNormLeakyReluGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Input("mean: float")
    .Input("inv_std: float")
    .Output("dx: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .Attr("slope: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(2));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(
    Name("ZspaceBatchNormLeakyRelu").Device(tensorflow::DEVICE_CPU),
    zspace::BatchNormLeakyRelu);
REGISTER_KERNEL_BUILDER(
    Name("ZspaceBatchNormLeakyReluGrad").Device(tensorflow::DEVICE_CPU),
    zspace::BatchNormLeakyReluGrad);
