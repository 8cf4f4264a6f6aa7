import LorsImage
import LorsTensor

/// The detection training/test pipelines of mmdetection, with every random choice drawn from counter-based keys
/// `RandomKey(seed:, purpose:, stream: (epoch, image index))`: a sample's transform is a function of
/// (seed, epoch, dataset image index) and of its original size only, whichever rank or worker thread processes it and
/// in whatever order. Because the plan needs only the original size, the final (and padded) size of every sample of a
/// batch is known before any image is decoded.
public struct DetectionPipeline: Sendable, Equatable {
    /// Which of mmdetection's pipelines.
    public enum Kind: String, Sendable, Equatable {
        /// mmdetection's test pipeline: keep-ratio `Resize(scale=(1333, 800))`, no flip.
        case test
        /// The single-scale training pipeline: `RandomFlip(prob=0.5)`, keep-ratio `Resize(scale=(1333, 800))`.
        case standard
        /// The AdaMixer / Sparse R-CNN 3x pipeline: `RandomFlip(prob=0.5)`, then with probability 1/2 each
        /// `[RandomChoiceResize(scales=[(1333, s) for s in 480, 512, …, 800], keep_ratio=True)]` or
        /// `[RandomChoiceResize([(1333, 400), (1333, 500), (1333, 600)]), RandomCrop('absolute_range', (384, 600),
        /// allow_negative_crop=True), RandomChoiceResize(the multi-scale list again)]`.
        case multiscaleCrop
    }

    public var kind: Kind
    /// The (long, short) side limits of the keep-ratio resize (mmdetection's `scale`, COCO: (1333, 800)). Every size
    /// of the multi-scale recipe is scaled by `shortSide / 800`, so `(333, 200)` is the COCO recipe at a quarter size.
    public var longSide: Int
    public var shortSide: Int

    public init(_ kind: Kind, longSide: Int = Self.cocoLongSide, shortSide: Int = Self.cocoShortSide) {
        precondition(longSide > 0 && shortSide > 0, "DetectionPipeline: scale (\(longSide), \(shortSide)) must be positive")
        self.kind = kind
        self.longSide = longSide
        self.shortSide = shortSide
    }

    /// The COCO pipelines at mmdetection's scale (1333, 800).
    public static let test = DetectionPipeline(.test)
    public static let standard = DetectionPipeline(.standard)
    public static let multiscaleCrop = DetectionPipeline(.multiscaleCrop)

    /// COCO's keep-ratio scale (long, short).
    public static let cocoLongSide = 1333
    public static let cocoShortSide = 800
    /// The short sides of the multi-scale resize at COCO scale: 480, 512, …, 800.
    public static let multiscaleShortSides = Array(stride(from: 480, through: 800, by: 32))
    /// The short sides of the resize before the crop at COCO scale.
    public static let cropShortSides = [400, 500, 600]
    /// `crop_size` of the absolute-range crop at COCO scale: height and width each uniform in this range (clipped to
    /// the image).
    public static let cropRange = (384, 600)

    /// `size` of the COCO recipe at this pipeline's scale (rounded, at least 1).
    func scaled(_ size: Int) -> Int {
        shortSide == Self.cocoShortSide ? size : max(1, Int((Double(size) * Double(shortSide) / Double(Self.cocoShortSide)).rounded()))
    }

    /// One geometric step of a plan.
    public enum Step: Sendable, Equatable {
        case flip
        case resize(width: Int, height: Int)
        case crop(x: Int, y: Int, width: Int, height: Int)
    }

    /// The resolved random choices for one sample: its steps and the size it ends with.
    public struct Plan: Sendable, Equatable {
        public var steps: [Step]
        public var width: Int
        public var height: Int
        public var flipped: Bool { steps.contains(.flip) }
    }

    /// The plan of image `index` (dataset index) of original size `width`×`height` in `epoch`.
    public func plan(width: Int, height: Int, seed: UInt64, epoch: Int, index: Int) -> Plan {
        let key = RandomKey(seed: seed, purpose: "det.pipeline", stream: (UInt64(epoch), UInt64(index)))
        var steps: [Step] = []
        var w = width, h = height
        func resize(shortSide: Int) {
            let size = DetectionTransforms.rescaledSize(width: w, height: h, scale: (longSide, shortSide))
            steps.append(.resize(width: size.width, height: size.height))
            (w, h) = size
        }
        // Word 0: flip; word 1: which branch; words 2–3: the first resize's scale; 4–7: crop size and offset;
        // word 8: the last resize's scale.
        let multiscale = Self.multiscaleShortSides.map(scaled), cropSides = Self.cropShortSides.map(scaled)
        switch kind {
        case .test:
            resize(shortSide: shortSide)
        case .standard:
            if key.uniform(at: 0) < 0.5 { steps.append(.flip) }
            resize(shortSide: shortSide)
        case .multiscaleCrop:
            if key.uniform(at: 0) < 0.5 { steps.append(.flip) }
            if key.uniform(at: 1) < 0.5 {
                resize(shortSide: multiscale[key.integer(below: multiscale.count, at: 2)])
            } else {
                resize(shortSide: cropSides[key.integer(below: cropSides.count, at: 3)])
                let (lo, hi) = (scaled(Self.cropRange.0), scaled(Self.cropRange.1))
                let ch = min(h, lo) + key.integer(below: min(h, hi) - min(h, lo) + 1, at: 4)
                let cw = min(w, lo) + key.integer(below: min(w, hi) - min(w, lo) + 1, at: 5)
                let y = key.integer(below: max(h - ch, 0) + 1, at: 6)
                let x = key.integer(below: max(w - cw, 0) + 1, at: 7)
                steps.append(.crop(x: x, y: y, width: cw, height: ch))
                (w, h) = (cw, ch)
                resize(shortSide: multiscale[key.integer(below: multiscale.count, at: 8)])
            }
        }
        return Plan(steps: steps, width: w, height: h)
    }

    /// Applies a plan's steps to a sample.
    public static func apply(_ plan: Plan, to sample: DetectionSample) -> DetectionSample {
        var s = sample
        for step in plan.steps {
            switch step {
            case .flip: s = DetectionTransforms.flip(s)
            case .resize(let w, let h): s = DetectionTransforms.resize(s, width: w, height: h)
            case .crop(let x, let y, let w, let h): s = DetectionTransforms.crop(s, x: x, y: y, width: w, height: h)
            }
        }
        return s
    }
}
