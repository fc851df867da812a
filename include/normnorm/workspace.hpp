#pragma once
// The scratch memory of one forward or backward call: one block of bytes that the
// call carves into its parts (engine/memory_plan.hpp says where each goes). The
// saved context owns one and grows it to the largest call it has seen; a caller
// who budgets memory itself hands it a block instead (provide()), sized by
// normnorm::memory_plan, and a call that would need more is refused before it
// writes anything.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace normnorm {

class Workspace {
 public:
  // The alignment a provided block must have, and that every part gets.
  static constexpr std::size_t alignment = 64;

  Workspace() = default;
  // Scratch is not state: a copy starts empty and never shares the caller's block
  // (two contexts writing one block from two threads would race).
  Workspace(const Workspace&) {}
  Workspace& operator=(const Workspace&) {
    release();
    return *this;
  }
  Workspace(Workspace&&) noexcept = default;
  Workspace& operator=(Workspace&&) noexcept = default;

  // Use `bytes` at `data` (aligned to `alignment`) from now on, instead of owned
  // memory, which is freed. The block must outlive the calls that use it.
  // Returns false (and changes nothing) when `data` is null or misaligned.
  bool provide(void* data, std::size_t bytes) {
    if (!data || reinterpret_cast<std::uintptr_t>(data) % alignment != 0) return false;
    std::vector<Block>().swap(owned_);
    provided_ = static_cast<unsigned char*>(data);
    provided_bytes_ = bytes;
    return true;
  }
  bool is_provided() const { return provided_ != nullptr; }

  // Bytes usable now: the provided block's size, or what the owned block holds.
  std::size_t capacity() const { return provided_ ? provided_bytes_ : owned_.capacity() * sizeof(Block); }

  // Frees the owned block and forgets a provided one.
  void release() {
    std::vector<Block>().swap(owned_);
    provided_ = nullptr;
    provided_bytes_ = 0;
  }

  // Sets `base` to the start of at least `bytes` bytes, growing the owned block to
  // exactly that (rounded up to `alignment`) when it is smaller; false when a
  // provided block is too small. May throw std::bad_alloc (the API turns it into a
  // Status); a failure leaves the workspace as it was.
  bool reserve(std::size_t bytes, unsigned char*& base) {
    if (provided_) {
      base = provided_;
      return bytes <= provided_bytes_;
    }
    const std::size_t blocks = (bytes + sizeof(Block) - 1) / sizeof(Block);
    if (owned_.capacity() < blocks) {
      std::vector<Block> grown;
      grown.reserve(blocks);  // exactly: capacity() is then what memory_plan predicts
      grown.resize(blocks);
      owned_.swap(grown);
    }
    base = reinterpret_cast<unsigned char*>(owned_.data());
    return true;
  }

 private:
  struct alignas(alignment) Block {
    unsigned char bytes[alignment];
  };
  std::vector<Block> owned_;
  unsigned char* provided_ = nullptr;
  std::size_t provided_bytes_ = 0;
};

}  // namespace normnorm
