// SPDX-License-Identifier: Apache-2.0
#pragma once
// Every preset by name: one table maps names (ours, and the authors' released spelling where it
// differs) to the compile-time configs of presets.hpp, so a name read at run time (a command line,
// a config file) picks a model type. New models are reachable once appended to kPresets.
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "blockformer/config.hpp"
#include "blockformer/error.hpp"
#include "blockformer/model/block_transformer.hpp"
#include "blockformer/model/gpt_neox_lm.hpp"
#include "blockformer/presets.hpp"

namespace blockformer {

namespace detail {
template <auto Config, Backend B>
struct ModelFor;
template <BlockConfig C, Backend B>
struct ModelFor<C, B> {
  using type = BlockTransformer<C, B>;
};
template <VanillaConfig C, Backend B>
struct ModelFor<C, B> {
  using type = GptNeoxLM<C, B>;
};
}  // namespace detail

/// One entry of the table: a config and the names it answers to.
template <auto Config>
struct Preset {
  static constexpr auto config = Config;
  static constexpr bool is_block = std::is_same_v<std::remove_cv_t<decltype(Config)>, BlockConfig>;
  /// The model type of this preset on backend B.
  template <Backend B>
  using Model = typename detail::ModelFor<Config, B>::type;

  std::string_view name;
  /// The authors' name for the released checkpoint, where it is not `name` (empty otherwise).
  std::string_view released_name{};

  constexpr bool answers_to(std::string_view n) const {
    return n == name || (!released_name.empty() && n == released_name);
  }
};

/// The table. Names are unique across name and released_name (checked below).
inline constexpr std::tuple kPresets{
    Preset<presets::block_main_b4_5>{"block_main_b4_5"},
    Preset<presets::block_main_b4_19>{"block_main_b4_19"},
    Preset<presets::block_main_b4_85>{"block_main_b4_85"},
    Preset<presets::block_main_b4_300>{"block_main_b4_300"},
    Preset<presets::block_main_b4_800>{"block_main_b4_800"},
    Preset<presets::block_main_b4_1_2b>{"block_main_b4_1_2b", "block_main_b4_1.2b"},
    Preset<presets::vanilla_31>{"vanilla_31"},
    Preset<presets::vanilla_70>{"vanilla_70"},
    Preset<presets::vanilla_160>{"vanilla_160"},
    Preset<presets::vanilla_410>{"vanilla_410"},
    Preset<presets::block_tiny>{"block_tiny"},
    Preset<presets::vanilla_tiny>{"vanilla_tiny"},
    Preset<presets::shakespeare_block>{"shakespeare_block"},
    Preset<presets::shakespeare_vanilla>{"shakespeare_vanilla"},
};

/// Calls fn(preset) for every entry of kPresets, in table order.
template <class Fn>
constexpr void for_each_preset(Fn&& fn) {
  std::apply([&](const auto&... preset) { (fn(preset), ...); }, kPresets);
}

/// A selection of presets that accepts them all (see with_preset).
struct AllPresets {
  constexpr bool operator()(const auto&) const { return true; }
};

namespace detail {
constexpr bool preset_names_unique() {
  std::vector<std::string_view> names;
  for_each_preset([&](const auto& preset) {
    names.push_back(preset.name);
    if (!preset.released_name.empty()) names.push_back(preset.released_name);
  });
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t j = i + 1; j < names.size(); ++j)
      if (names[i] == names[j]) return false;
  return true;
}
static_assert(preset_names_unique(), "kPresets: two entries answer to the same name");

inline constexpr std::size_t kPresetCount = std::tuple_size_v<std::remove_cv_t<decltype(kPresets)>>;

template <class Select>
constexpr std::size_t first_selected() {
  std::size_t index = 0, first = kPresetCount;
  for_each_preset([&](const auto& preset) {
    if (first == kPresetCount && Select{}(preset)) first = index;
    ++index;
  });
  return first;
}

template <Backend B, std::size_t I>
using PresetModel = typename std::tuple_element_t<I, std::remove_cv_t<decltype(kPresets)>>::template Model<B>;

template <Backend B, class Select, std::size_t I, class Result, class Fn>
Result with_preset_from(std::string_view name, Fn& fn);
}  // namespace detail

/// Every preset's name, in table order (released names not repeated).
inline std::vector<std::string_view> preset_names() {
  std::vector<std::string_view> names;
  for_each_preset([&](const auto& preset) { names.push_back(preset.name); });
  return names;
}

/// Whether a preset that `select` accepts answers to `name`.
template <class Select = AllPresets>
bool is_preset(std::string_view name, Select select = {}) {
  bool found = false;
  for_each_preset([&](const auto& preset) { found = found || (select(preset) && preset.answers_to(name)); });
  return found;
}

/// The Error for a name no preset answers to: it lists the valid names.
inline Error unknown_preset(std::string_view name) {
  std::string valid;
  for_each_preset([&](const auto& preset) {
    valid += (valid.empty() ? "" : ", ") + std::string(preset.name);
    if (!preset.released_name.empty()) valid += " (or " + std::string(preset.released_name) + ")";
  });
  return Error("unknown model '" + std::string(name) + "'; the presets are: " + valid);
}

/// Calls fn(std::type_identity<Model>{}) with the model type of the preset called `name` on backend
/// B and returns what fn returns; throws unknown_preset(name) when no preset answers to it. fn is a
/// generic lambda, instantiated for every preset that `select` accepts: a captureless lambda taking
/// a Preset, evaluated at compile time (e.g. `[](const auto& p) { return p.is_block; }`), so that a
/// program can spread the instantiations over translation units, one selection in each. A name the
/// selection leaves out is refused, saying so.
template <Backend B, class Fn, class Select = AllPresets>
decltype(auto) with_preset(std::string_view name, Fn&& fn, Select = {}) {
  constexpr std::size_t first = detail::first_selected<Select>();
  static_assert(first < detail::kPresetCount, "with_preset: the selection accepts no preset");
  using Result = decltype(fn(std::type_identity<detail::PresetModel<B, first>>{}));
  return detail::with_preset_from<B, Select, first, Result>(name, fn);
}

namespace detail {
template <Backend B, class Select, std::size_t I, class Result, class Fn>
Result with_preset_from(std::string_view name, Fn& fn) {
  if constexpr (I == kPresetCount) {
    if (is_preset(name)) throw Error("with_preset: model '" + std::string(name) + "' is left out by the selection");
    throw unknown_preset(name);
  } else {
    if constexpr (Select{}(std::get<I>(kPresets)))
      if (std::get<I>(kPresets).answers_to(name)) return fn(std::type_identity<PresetModel<B, I>>{});
    return with_preset_from<B, Select, I + 1, Result>(name, fn);
  }
}
}  // namespace detail

}  // namespace blockformer
