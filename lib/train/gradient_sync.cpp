#include "train/gradient_sync.h"

#include "dist/world.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <mutex>

namespace cgm {

struct GradientSync::Impl {
    struct Bucket {
        std::vector<size_t> params;   // indices into Impl::params
        at::Tensor          flat;     // [numel of all] the gradients, then their sums
        size_t              ready   = 0;
        bool                started = false;
        dist::PendingSum    sum;
    };

    std::vector<at::Tensor> params;
    std::vector<size_t>     bucket_of;  // per parameter
    std::vector<int64_t>    offset_of;  // per parameter: where it starts in its bucket's `flat`
    std::vector<bool>       filled;     // per parameter: its gradient is in the bucket
    std::vector<Bucket>     buckets;
    std::vector<unsigned>   hooks;
    size_t                  next  = 0;  // the first bucket not started
    bool                    armed = false;
    std::mutex              mutex;      // hooks may run on autograd's device threads

    at::Tensor slot(size_t i) {
        return buckets[bucket_of[i]].flat.narrow(0, offset_of[i], params[i].numel()).view(params[i].sizes());
    }

    // Starts every complete bucket that is next in order.
    void start_ready() {
        while (next < buckets.size() && buckets[next].ready == buckets[next].params.size()) {
            buckets[next].started = true;
            buckets[next].sum     = dist::sum_async(buckets[next].flat);
            ++next;
        }
    }

    // A gradient of parameter i arrived in the step's last backward.
    void on_gradient(size_t i, const at::Tensor & grad) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!armed || filled[i]) {
            return;
        }
        c10::NoGradGuard no_grad;
        at::Tensor       s       = slot(i);
        const at::Tensor earlier = params[i].grad();
        if (earlier.defined()) {
            at::add_out(s, earlier, grad);
        } else {
            s.copy_(grad);
        }
        filled[i] = true;
        ++buckets[bucket_of[i]].ready;
        start_ready();
    }
};

GradientSync::GradientSync(std::vector<at::Tensor> params, int64_t bucket_bytes) : impl_(std::make_unique<Impl>()) {
    Impl & m = *impl_;
    m.params = std::move(params);
    m.bucket_of.assign(m.params.size(), 0);
    m.offset_of.assign(m.params.size(), 0);
    m.filled.assign(m.params.size(), false);
    // Reverse order, one dtype and device per bucket, at most bucket_bytes (a larger parameter alone).
    int64_t bytes = 0;
    for (size_t k = m.params.size(); k-- > 0;) {
        const at::Tensor & p     = m.params[k];
        const int64_t      size  = p.numel() * static_cast<int64_t>(p.element_size());
        const bool         fresh = m.buckets.empty() || bytes + size > bucket_bytes ||
                           m.params[m.buckets.back().params.front()].options().dtype() != p.options().dtype() ||
                           m.params[m.buckets.back().params.front()].device() != p.device();
        if (fresh) {
            m.buckets.emplace_back();
            bytes = 0;
        }
        Impl::Bucket & b = m.buckets.back();
        m.offset_of[k]   = b.params.empty() ? 0 : m.offset_of[b.params.back()] + m.params[b.params.back()].numel();
        m.bucket_of[k]   = m.buckets.size() - 1;
        b.params.push_back(k);
        bytes += size;
    }
    for (auto & b : m.buckets) {
        const at::Tensor & last = m.params[b.params.back()];
        b.flat                  = at::zeros({ m.offset_of[b.params.back()] + last.numel() }, last.options().requires_grad(false));
    }
    for (size_t i = 0; i < m.params.size(); ++i) {
        Impl * self = impl_.get();
        m.hooks.push_back(m.params[i].register_hook([self, i](const at::Tensor & grad) { self->on_gradient(i, grad); }));
    }
}

GradientSync::~GradientSync() {
    for (size_t i = 0; i < impl_->params.size(); ++i) {
        impl_->params[i].remove_hook(impl_->hooks[i]);
    }
}

void GradientSync::arm() {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->armed = true;
}

std::vector<double> GradientSync::finish(const std::vector<double> & extra) {
    Impl &           m = *impl_;
    c10::NoGradGuard no_grad;
    // Whether each parameter has a gradient here, summed with `extra`: which ones any rank has.
    at::Tensor flags = at::zeros({ static_cast<int64_t>(extra.size() + m.params.size()) }, at::kDouble);
    double *   flag  = flags.data_ptr<double>();
    {
        std::lock_guard<std::mutex> lock(m.mutex);
        for (size_t i = 0; i < m.params.size(); ++i) {
            const bool has = m.filled[i] || m.params[i].grad().defined();
            flag[extra.size() + i] = has ? 1.0 : 0.0;
            if (!m.filled[i]) {
                const at::Tensor earlier = m.params[i].grad();
                earlier.defined() ? m.slot(i).copy_(earlier) : m.slot(i).zero_();
                m.filled[i] = true;
                ++m.buckets[m.bucket_of[i]].ready;
            }
        }
        m.start_ready();
    }
    std::copy(extra.begin(), extra.end(), flag);
    for (auto & b : m.buckets) {
        b.sum.wait();
    }
    dist::sum(flags);
    for (size_t i = 0; i < m.params.size(); ++i) {
        at::Tensor & p = m.params[i];
        if (flag[extra.size() + i] == 0) {
            p.mutable_grad() = at::Tensor();
        } else if (p.grad().defined()) {
            p.mutable_grad().copy_(m.slot(i));
        } else {
            p.mutable_grad() = m.slot(i).clone();
        }
    }
    for (auto & b : m.buckets) {
        b.ready   = 0;
        b.started = false;
    }
    m.filled.assign(m.params.size(), false);
    m.next  = 0;
    m.armed = false;
    return std::vector<double>(flag, flag + extra.size());
}

size_t GradientSync::buckets() const {
    return impl_->buckets.size();
}

}  // namespace cgm
