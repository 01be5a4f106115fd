#include "nn/data_parallel.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "core/factory.h"
#include "ops/movement.h"

namespace latte::nn {

struct DistributedDataParallel::Impl {
    struct Slot {
        std::string name;
        Tensor param;
        size_t bucket = 0;
        int64_t offset = 0;  // in the bucket's flat buffer
        int64_t flag = 0;    // where the bucket holds 1 if this rank produced the gradient, else 0
        bool ready = false;  // its gradient is in the bucket (this backward)
    };
    // A bucket's flat buffer holds its parameters' gradients, then one "has a gradient" flag per
    // parameter: averaged with the gradients, a flag of 0 means no rank produced that gradient.
    struct Bucket {
        Tensor flat;
        std::vector<size_t> slots;
        size_t pending = 0;
        bool launched = false;
        distributed::Work work;
    };

    Module& module;
    std::vector<Slot> slots;
    std::vector<std::pair<std::string, Tensor>> frozen;  // no gradient when built: broadcast, no bucket
    std::vector<Bucket> buckets;
    std::vector<uint64_t> hooks;
    size_t next_launch = 0;  // buckets start in index order, the same on every rank
    size_t ready_count = 0;  // slots whose gradient is in its bucket
    bool in_backward = false;
    uint64_t backward_id = 0;  // the engine's id of the backward being synchronised
    int no_sync_depth = 0;
    int64_t started_early = 0;
    bool broken = false;  // a backward failed while averaging: buckets may pair with other ranks' calls
    distributed::Chain chain;  // this backward's buckets: after one fails, the rest do not communicate

    explicit Impl(Module& m) : module(m) {}

    Tensor view_of(const Slot& slot) const {
        const Tensor& flat = buckets[slot.bucket].flat;
        return reshape(narrow(flat, 0, slot.offset, slot.param.numel()), slot.param.shape());
    }
    void set_flag(const Slot& slot, double value) {
        const Tensor& flat = buckets[slot.bucket].flat;
        backend_for(flat.device()).fill(narrow(flat, 0, slot.flag, 1).view(), value);
    }

    void begin_backward() {
        // A parameter unfrozen since: it has no bucket, so its gradient would stay this rank's own.
        for (const auto& [name, p] : frozen)
            LATTE_CHECK(!p.requires_grad(), "DistributedDataParallel: parameter '", name, "' did not require a "
                        "gradient when the DistributedDataParallel was built and does now, so its gradient would not "
                        "be averaged (build the DistributedDataParallel after unfreezing)");
        for (const Slot& s : slots) {
            const Tensor& flat = buckets[s.bucket].flat;
            LATTE_CHECK(s.param.dtype() == flat.dtype() && s.param.device() == flat.device(),
                        "DistributedDataParallel: parameter '", s.name, "' is now ", dtype_name(s.param.dtype()),
                        " on ", s.param.device().str(), ", but its gradient bucket was built for ",
                        dtype_name(flat.dtype()), " on ", flat.device().str(),
                        " (build the DistributedDataParallel after Module::to)");
        }
        for (Slot& s : slots) s.ready = false;
        ready_count = 0;
        for (Bucket& b : buckets) {
            b.pending = b.slots.size();
            b.launched = false;
        }
        next_launch = 0;
        started_early = 0;
        chain = distributed::Chain{};
        in_backward = true;
        backward_id = running_backward_id();
        queue_backward_callback([this] { finish_backward(); });
    }

    void launch_ready_buckets() {
        while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
            Bucket& b = buckets[next_launch++];
            b.work = distributed::all_reduce_async(b.flat, distributed::ReduceOp::Avg, chain);
            b.launched = true;
            if (ready_count < slots.size()) ++started_early;  // backward still has gradients to make
        }
    }

    void on_gradient(size_t index) {
        if (no_sync_depth > 0) return;
        // A backward that threw never reached its callback: its buckets are half filled and
        // maybe half reduced, and the other ranks may be elsewhere. Carrying on would average
        // mismatched gradients, so refuse.
        LATTE_CHECK(!broken && (!in_backward || backward_id == running_backward_id()), "DistributedDataParallel: "
                    "an earlier backward stopped with an error before its gradients were averaged, so the ranks' "
                    "gradients can no longer be matched (restart the run, or build a new DistributedDataParallel on "
                    "every rank)");
        if (!in_backward) begin_backward();
        Slot& s = slots[index];
        if (s.ready) return;
        copy_(view_of(s), s.param.grad());
        set_flag(s, 1.0);
        s.ready = true;
        ++ready_count;
        --buckets[s.bucket].pending;
        launch_ready_buckets();
    }

    // At the end of backward: a parameter that got no gradient on this rank adds zeros (or the
    // gradient it accumulated under no_sync); then wait for every bucket and copy the averages
    // into the gradients. A parameter no rank produced a gradient for keeps none, as in one process.
    // An all-reduce still in flight writes into its bucket: wait for every launched one before the
    // buckets are reused or freed (their errors are moot by then).
    void wait_for_launched_buckets() {
        for (Bucket& b : buckets) {
            if (!b.launched) continue;
            try {
                b.work.wait();
            } catch (const Error&) {
            }
        }
    }

    void finish_backward() {
        try {
            average_gradients();
        } catch (...) {
            // The buckets after the failing one fail without communicating (the chain) and break
            // the group, so none pairs with another rank's unrelated collective; wait them out,
            // and refuse every later backward.
            broken = true;
            wait_for_launched_buckets();
            throw;
        }
    }

    void average_gradients() {
        in_backward = false;
        for (Slot& s : slots) {
            if (s.ready) continue;
            Tensor g = s.param.grad();
            if (g.defined()) copy_(view_of(s), g);
            else backend_for(s.param.device()).fill(view_of(s).view(), 0.0);
            set_flag(s, g.defined() ? 1.0 : 0.0);
            s.ready = true;
            ++ready_count;
            --buckets[s.bucket].pending;
        }
        launch_ready_buckets();
        for (Bucket& b : buckets) {
            b.work.wait();
            const std::vector<double> flags =
                narrow(b.flat, 0, slots[b.slots.front()].flag, int64_t(b.slots.size())).to_vector<double>();
            for (size_t k = 0; k < b.slots.size(); ++k) {
                Slot& s = slots[b.slots[k]];
                if (flags[k] == 0) continue;  // no rank has a gradient for it
                Tensor g = s.param.grad();
                if (g.defined()) copy_(g, view_of(s));
                else s.param.set_grad(clone(view_of(s)));
            }
        }
    }
};

DistributedDataParallel::DistributedDataParallel(Module& module, DataParallelOptions options)
    : impl_(std::make_unique<Impl>(module)) {
    LATTE_CHECK(distributed::is_initialized(), "DistributedDataParallel: the process group is not initialized "
                "(call distributed::init_process_group() first)");
    LATTE_CHECK(options.bucket_cap_mb > 0, "DistributedDataParallel: bucket_cap_mb must be positive, got ",
                options.bucket_cap_mb);
    const double cap_bytes = options.bucket_cap_mb * 1024 * 1024;

    // Every rank must hold the same parameters, in the same order.
    std::vector<int64_t> layout;
    const auto named = module.named_parameters();
    for (const auto& [name, p] : named) {
        layout.push_back(p.requires_grad() ? 1 : 0);
        layout.push_back(static_cast<int64_t>(p.dtype()));
        layout.push_back(p.dim());
        for (int64_t size : p.shape()) layout.push_back(size);
    }
    distributed::check_same_on_all_ranks({static_cast<int64_t>(layout.size())}, "DistributedDataParallel: the "
                                         "module's parameter layout");
    distributed::check_same_on_all_ranks(layout, "DistributedDataParallel: the module's parameter shapes and dtypes");

    // Buckets in reverse registration order, one dtype and device each, of about cap_bytes.
    double bucket_bytes = 0;
    for (auto it = named.rbegin(); it != named.rend(); ++it) {
        const Tensor& p = it->second;
        if (!p.requires_grad()) continue;
        const double bytes = static_cast<double>(p.numel() * dtype_size(p.dtype()));
        Impl::Slot* last = impl_->slots.empty() ? nullptr : &impl_->slots.back();
        const bool start_new = !last || last->param.dtype() != p.dtype() || last->param.device() != p.device() ||
                               bucket_bytes + bytes > cap_bytes;
        if (start_new) {
            impl_->buckets.emplace_back();
            bucket_bytes = 0;
        }
        Impl::Bucket& b = impl_->buckets.back();
        int64_t offset = 0;
        for (size_t i : b.slots) offset += impl_->slots[i].param.numel();
        impl_->slots.push_back({it->first, p, impl_->buckets.size() - 1, offset, false});
        b.slots.push_back(impl_->slots.size() - 1);
        bucket_bytes += bytes;
    }
    for (Impl::Bucket& b : impl_->buckets) {
        int64_t numel = 0;
        for (size_t i : b.slots) numel += impl_->slots[i].param.numel();
        for (size_t k = 0; k < b.slots.size(); ++k) impl_->slots[b.slots[k]].flag = numel + int64_t(k);
        const Tensor& first = impl_->slots[b.slots.front()].param;
        b.flat = zeros({numel + int64_t(b.slots.size())}, first.options());
    }

    for (const auto& [name, p] : named)
        if (!p.requires_grad()) impl_->frozen.emplace_back(name, p);
    if (options.broadcast_parameters) {
        NoGradGuard no_grad;
        for (Impl::Bucket& b : impl_->buckets) {
            for (size_t i : b.slots) copy_(impl_->view_of(impl_->slots[i]), impl_->slots[i].param);
            distributed::broadcast(b.flat, 0);
            for (size_t i : b.slots) copy_(impl_->slots[i].param, impl_->view_of(impl_->slots[i]));
        }
        // Frozen parameters too (a frozen embedding, say): every rank must run the same model.
        for (const auto& [name, p] : impl_->frozen) {
            Tensor data = contiguous(p.detach());  // the parameter itself when it is contiguous
            distributed::broadcast(data, 0);
            if (data.storage() != p.storage()) copy_(p, data);
        }
    }
    for (size_t i = 0; i < impl_->slots.size(); ++i) {
        Impl* impl = impl_.get();
        impl_->hooks.push_back(impl_->slots[i].param.register_post_accumulate_grad_hook([impl, i] { impl->on_gradient(i); }));
    }
}

DistributedDataParallel::~DistributedDataParallel() {
    for (size_t i = 0; i < impl_->slots.size(); ++i) impl_->slots[i].param.remove_post_accumulate_grad_hook(impl_->hooks[i]);
    impl_->wait_for_launched_buckets();
}

Module& DistributedDataParallel::module() const { return impl_->module; }

DistributedDataParallel::NoSync::NoSync(DistributedDataParallel& ddp) : ddp_(ddp) { ++ddp_.impl_->no_sync_depth; }
DistributedDataParallel::NoSync::~NoSync() { --ddp_.impl_->no_sync_depth; }

std::vector<std::vector<std::string>> DistributedDataParallel::bucket_names() const {
    std::vector<std::vector<std::string>> names;
    for (const Impl::Bucket& b : impl_->buckets) {
        names.emplace_back();
        for (size_t i : b.slots) names.back().push_back(impl_->slots[i].name);
    }
    return names;
}

int64_t DistributedDataParallel::buckets_started_early() const { return impl_->started_early; }

Tensor shard_batch(const Tensor& batch) {
    check_defined(batch, "shard_batch", "batch");
    LATTE_CHECK(batch.dim() >= 1, "shard_batch: needs a batch dimension, got a scalar");
    const int size = distributed::world_size();
    const int64_t n = batch.size(0);
    LATTE_CHECK(n % size == 0, "shard_batch: a batch of ", n, " rows (shape ", shape_str(batch.shape()),
                ") does not split evenly over ", size, " ranks");
    const int64_t per = n / size;
    return narrow(batch, 0, distributed::rank() * per, per);
}

}  // namespace latte::nn
