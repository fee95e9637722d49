// Paste masks: per-box M x M mask probabilities -> image-sized masks
// (DESIGN.md section 5). Two modes, see paste_masks_common.h for the exact
// arithmetic:
//   torchvision  torchvision's paste_masks_in_image (padding 1, box expanded
//                by (M+2)/M and truncated to integers, bilinear resize with
//                align_corners=False, clipped into the image).
//   aligned      every pixel centre inside the continuous box is sampled
//                bilinearly between mask cell centres (clamped at the border).
// Pixels outside the pasted rectangle are 0 (false). Boxes with non-finite
// coordinates (or beyond 2^62) paste nothing.
//
// Contract (all views CPU and row-major contiguous; outputs preallocated by
// the caller, never allocated here):
//   masks   [N, M, M] float32|float64, M >= 1
//   boxes   [N, 4] same dtype: (x1, y1, x2, y2), image pixels
//   rects   [N, 4] int64: the clipped rectangle (x0, y0, x1, y1) of each mask,
//           [x0, x1) x [y0, y1); (0, 0, 0, 0) when nothing is pasted.
//   Output kinds: bool when has_threshold (value > T(threshold)), else the
//   masks' dtype (the probabilities).
#pragma once
#include <cstdint>
#include <string>

#include "common/tensor_view.h"

namespace mn {

struct PasteMasksParams {
  int64_t height = 0, width = 0;  // image size, both >= 1
  bool torchvision = false;       // mode
  bool has_threshold = true;
  double threshold = 0.5;         // finite, >= 0 (pixels outside the box stay false)
};

// "aligned" -> false, "torchvision" -> true; anything else is a ValueError.
bool paste_masks_parse_mode(const std::string& mode);

// Fills rects [N, 4] int64 with each mask's clipped rectangle.
void paste_masks_plan(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                      const PasteMasksParams& p);

// output [N, H, W]: the full image masks; every element is written
// (zero fill outside the rectangle happens here, in parallel).
void paste_masks_forward(const TensorView& masks, const TensorView& boxes,
                         const TensorView& output, const PasteMasksParams& p);

// Box-local crops. rects must equal what paste_masks_plan gives; crop i is
// stored row-major [y1-y0, x1-x0] at element offset sum_{j<i} area_j of the
// 1-D `output`, whose length must be the sum of all areas.
void paste_masks_crops(const TensorView& masks, const TensorView& boxes, const TensorView& rects,
                       const TensorView& output, const PasteMasksParams& p);

// Uncompressed COCO RLE (column-major run lengths, first run counts zeros) of
// the full H x W bitmaps described by bool crops laid out as above.
// Preallocate-and-count: mask i may write at most w_i * (h_i + 1) + 2 runs,
// starting at offset sum_{j<i} of that capacity in the 1-D int64 `counts`,
// whose length must be the total capacity; lengths[i] receives how many runs
// mask i wrote. Only height and width of p are used.
void paste_masks_rle_counts(const TensorView& crops, const TensorView& rects,
                            const TensorView& counts, const TensorView& lengths,
                            const PasteMasksParams& p);

// Capacity (in runs) of one mask's RLE given its rectangle's size.
inline int64_t paste_masks_rle_capacity(int64_t w, int64_t h) { return w * (h + 1) + 2; }

}  // namespace mn
