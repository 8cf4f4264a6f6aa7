import LorsImage
import LorsTensor

/// One detection sample on its way through the pipeline: the 8-bit image (HWC) and its boxes in pixels.
///
/// Boxes are xyxy `Float` quadruples, transformed with mmdetection's (3.x, `HorizontalBoxes`) float32 formulas;
/// ignored (crowd) boxes follow the same geometry and the same drop rule as the boxes.
public struct DetectionSample: Sendable, Equatable {
    public var image: ByteImage
    /// xyxy quadruples.
    public var boxes: [Float]
    /// One contiguous label per box.
    public var labels: [Int32]
    /// xyxy quadruples of the crowd/ignored boxes.
    public var ignoredBoxes: [Float]
    /// `(new_w / w, new_h / h)` of the last resize (mmdetection's `scale_factor`, which each `Resize` overwrites);
    /// `(1, 1)` before any resize.
    public var scaleFactor: (width: Double, height: Double)
    /// Whether the image was flipped left–right.
    public var flipped: Bool

    public init(image: ByteImage, boxes: [Float], labels: [Int32], ignoredBoxes: [Float] = []) {
        precondition(boxes.count == 4 * labels.count && ignoredBoxes.count % 4 == 0, "boxes must be xyxy quadruples, one label per box")
        self.image = image
        self.boxes = boxes
        self.labels = labels
        self.ignoredBoxes = ignoredBoxes
        self.scaleFactor = (1, 1)
        self.flipped = false
    }

    public static func == (a: DetectionSample, b: DetectionSample) -> Bool {
        a.image == b.image && a.boxes == b.boxes && a.labels == b.labels && a.ignoredBoxes == b.ignoredBoxes
            && a.scaleFactor == b.scaleFactor && a.flipped == b.flipped
    }
}

/// The geometric transforms of mmdetection's detection pipelines, on `DetectionSample`s.
public enum DetectionTransforms {
    /// mmcv's `rescale_size(old_size, scale)` for a tuple scale (`keep_ratio=True`): the factor
    /// `min(max(scale) / max(h, w), min(scale) / min(h, w))`, new size `int(w·s + 0.5)`, `int(h·s + 0.5)`.
    public static func rescaledSize(width: Int, height: Int, scale: (Int, Int)) -> (width: Int, height: Int) {
        let longEdge = Double(max(scale.0, scale.1)), shortEdge = Double(min(scale.0, scale.1))
        let s = min(longEdge / Double(max(width, height)), shortEdge / Double(min(width, height)))
        return (Int(Double(width) * s + 0.5), Int(Double(height) * s + 0.5))
    }

    /// mmdetection's `Resize` to exactly `width`×`height`: the image by `BilinearResize` (OpenCV's INTER_LINEAR),
    /// boxes scaled by `(new_w / w, new_h / h)` in float32 and clipped to the new image (`clip_object_border=True`).
    public static func resize(_ sample: DetectionSample, width: Int, height: Int) -> DetectionSample {
        var out = sample
        let w = sample.image.width, h = sample.image.height
        let sw = Double(width) / Double(w), sh = Double(height) / Double(h)
        out.image = BilinearResize.resize(sample.image, width: width, height: height)
        out.scaleFactor = (sw, sh)
        let fw = Float(sw), fh = Float(sh), W = Float(width), H = Float(height)
        func map(_ boxes: [Float]) -> [Float] {
            var b = boxes
            for i in stride(from: 0, to: b.count, by: 4) {
                b[i] = min(max(b[i] * fw, 0), W)
                b[i + 1] = min(max(b[i + 1] * fh, 0), H)
                b[i + 2] = min(max(b[i + 2] * fw, 0), W)
                b[i + 3] = min(max(b[i + 3] * fh, 0), H)
            }
            return b
        }
        out.boxes = map(sample.boxes)
        out.ignoredBoxes = map(sample.ignoredBoxes)
        return out
    }

    /// Keep-ratio resize to `scale` (mmdetection's `Resize(scale, keep_ratio=True)`).
    public static func rescale(_ sample: DetectionSample, scale: (Int, Int)) -> DetectionSample {
        let size = rescaledSize(width: sample.image.width, height: sample.image.height, scale: scale)
        return resize(sample, width: size.width, height: size.height)
    }

    /// Left–right flip: pixels mirrored, `x1' = w − x2`, `x2' = w − x1`. Toggles `flipped`.
    public static func flip(_ sample: DetectionSample) -> DetectionSample {
        var out = sample
        let img = sample.image, w = img.width, c = img.channels
        var pixels = img.pixels
        pixels.withUnsafeMutableBufferPointer { dst in
            img.pixels.withUnsafeBufferPointer { src in
                for y in 0..<img.height {
                    let row = y * w * c
                    for x in 0..<w {
                        let s = row + (w - 1 - x) * c, d = row + x * c
                        for k in 0..<c { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        out.image = ByteImage(width: w, height: img.height, channels: c, pixels: pixels)
        let W = Float(w)
        func map(_ boxes: [Float]) -> [Float] {
            var b = boxes
            for i in stride(from: 0, to: b.count, by: 4) {
                b[i] = W - boxes[i + 2]
                b[i + 2] = W - boxes[i]
            }
            return b
        }
        out.boxes = map(sample.boxes)
        out.ignoredBoxes = map(sample.ignoredBoxes)
        out.flipped.toggle()
        return out
    }

    /// mmdetection's `RandomCrop._crop_data` at a given offset and size: the region `[y, y+height) × [x, x+width)`
    /// (clipped to the image), boxes translated by `(−x, −y)` and clipped to the crop (`bbox_clip_border=True`), then
    /// boxes that do not overlap the crop (zero width or height after clipping) dropped with their labels.
    /// With `allow_negative_crop=True` a crop may keep no box at all.
    public static func crop(_ sample: DetectionSample, x: Int, y: Int, width: Int, height: Int) -> DetectionSample {
        let img = sample.image, c = img.channels
        let x0 = max(0, min(x, img.width)), y0 = max(0, min(y, img.height))
        let x1 = min(img.width, x0 + max(0, width)), y1 = min(img.height, y0 + max(0, height))
        let cw = x1 - x0, ch = y1 - y0
        var pixels = [UInt8](repeating: 0, count: cw * ch * c)
        pixels.withUnsafeMutableBufferPointer { dst in
            img.pixels.withUnsafeBufferPointer { src in
                for row in 0..<ch {
                    let s = ((y0 + row) * img.width + x0) * c
                    for k in 0..<(cw * c) { dst[row * cw * c + k] = src[s + k] }
                }
            }
        }
        var out = sample
        out.image = ByteImage(width: cw, height: ch, channels: c, pixels: pixels)
        let dx = Float(x0), dy = Float(y0), W = Float(cw), H = Float(ch)
        func map(_ boxes: [Float], labels: [Int32]?) -> ([Float], [Int32]) {
            var kept: [Float] = [], keptLabels: [Int32] = []
            for i in stride(from: 0, to: boxes.count, by: 4) {
                let bx1 = min(max(boxes[i] - dx, 0), W), by1 = min(max(boxes[i + 1] - dy, 0), H)
                let bx2 = min(max(boxes[i + 2] - dx, 0), W), by2 = min(max(boxes[i + 3] - dy, 0), H)
                guard bx2 > bx1 && by2 > by1 else { continue }
                kept += [bx1, by1, bx2, by2]
                if let labels { keptLabels.append(labels[i / 4]) }
            }
            return (kept, keptLabels)
        }
        (out.boxes, out.labels) = map(sample.boxes, labels: sample.labels)
        out.ignoredBoxes = map(sample.ignoredBoxes, labels: nil).0
        return out
    }
}

/// Float normalisation and zero padding (mmdetection's `DetDataPreprocessor`: `(x − mean) / std` per RGB channel in
/// 0–255 units, then padding with 0 to the batch's size).
public struct DetectionNormalization: Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == 3 && std.count == 3, "mean and std need 3 (RGB) values")
        self.mean = mean
        self.std = std
    }

    /// mmdetection's ImageNet statistics: mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375].
    public static let imagenet = DetectionNormalization(mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375])

    /// Writes `image` (RGB, or grey repeated to 3 channels) as normalised CHW floats into `output`, a `[3, height,
    /// width]` block; pixels right of and below the image are 0. `height`/`width` must hold the image.
    public func write(_ image: ByteImage, into output: UnsafeMutablePointer<Float>, height: Int, width: Int) {
        precondition(image.height <= height && image.width <= width, "the padded size must hold the image")
        let c = image.channels, w = image.width, h = image.height
        image.pixels.withUnsafeBufferPointer { src in
            for channel in 0..<3 {
                let m = mean[channel], s = std[channel]
                let sc = c == 1 ? 0 : channel
                let plane = output + channel * height * width
                for y in 0..<h {
                    let row = plane + y * width
                    let srow = y * w * c + sc
                    for x in 0..<w { row[x] = (Float(src[srow + x * c]) - m) / s }
                    for x in w..<width { row[x] = 0 }
                }
                for y in h..<height { (plane + y * width).initialize(repeating: 0, count: width) }
            }
        }
    }
}

/// A size rounded up to a multiple of `divisor` (mmdetection's `pad_size_divisor`).
@inline(__always)
public func paddedUp(_ size: Int, to divisor: Int) -> Int { (size + divisor - 1) / divisor * divisor }
