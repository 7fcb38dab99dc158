// What BEiT tells its adapters and gates about the sequence: the patch tokens are its real
// positions (a gate's per-example mean leaves the CLS token out), in every layer and in the input a
// routing gate sees; the classifier gets its pooled vector as a one-token sequence.
#include "models/beit.h"

#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

using namespace cgm;

namespace {

// Records the mask of every call; adds nothing.
class MaskRecorder : public LinearAdapter {
  public:
    explicit MaskRecorder(int64_t d_out) : d_out_(d_out) {}
    at::Tensor delta(const at::Tensor & x, const AdapterCall & call) const override {
        masks.push_back(call.mask ? call.mask->clone() : at::Tensor());
        dims.push_back(x.dim());
        std::vector<int64_t> shape = x.sizes().vec();
        shape.back()               = d_out_;
        return at::zeros(shape, x.options());
    }
    mutable std::vector<at::Tensor> masks;
    mutable std::vector<int64_t>    dims;

  private:
    int64_t d_out_;
};

// Keeps the mask of the sequence it is asked to route.
struct MaskRouter : InputRouter {
    at::Tensor mask;
    void       route(const RoutingInput & input) override { mask = input.mask ? input.mask->clone() : at::Tensor(); }
};

}  // namespace

TEST_CASE("BEiT: adapters see the patch tokens as the sequence, the classifier the pooled vector", "[unit][beit]") {
    const nlohmann::json config = { { "hidden_size", 8 },        { "num_hidden_layers", 2 }, { "num_attention_heads", 2 },
                                    { "intermediate_size", 12 }, { "image_size", 8 },        { "patch_size", 4 },
                                    { "num_labels", 3 } };
    BeitModel model = BeitModel::random(BeitConfig::from_json(config, "test"), 1);
    std::vector<std::shared_ptr<MaskRecorder>> recorders;
    for (const auto & m : model.linear_modules()) {
        recorders.push_back(std::make_shared<MaskRecorder>(m.linear->weight.size(0)));
        m.linear->adapter = recorders.back();
    }
    const auto router = std::make_shared<MaskRouter>();
    model.set_input_router(router);
    model.forward(at::randn({ 3, 3, 8, 8 }));
    const at::Tensor & routed_mask = router->mask;

    const at::Tensor want = at::cat({ at::zeros({ 3, 1 }, at::kLong), at::ones({ 3, 4 }, at::kLong) }, 1);  // [B, 1 + 4]
    REQUIRE(routed_mask.defined());
    REQUIRE(at::equal(routed_mask, want));
    const auto modules = model.linear_modules();
    for (size_t i = 0; i < modules.size(); ++i) {
        INFO(modules[i].path);
        REQUIRE(recorders[i]->masks.size() == 1);
        if (modules[i].path == "classifier") {
            REQUIRE(recorders[i]->dims.front() == 3);  // [B, 1, D]: the pooled vector as a one-token sequence
        } else {
            REQUIRE(recorders[i]->dims.front() == 3);
            REQUIRE(recorders[i]->masks.front().defined());
            REQUIRE(at::equal(recorders[i]->masks.front().to(at::kLong), want));
        }
    }
}
