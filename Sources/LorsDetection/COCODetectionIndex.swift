/// The images and boxes of a COCO instances file as a detector trains or is evaluated on them: mmdetection's
/// `CocoDataset` (3.x `parse_data_info` and `filter_data`, with `filter_cfg=dict(filter_empty_gt=True, min_size=32)`
/// for training and `test_mode=True` for validation), held in flat arrays.
///
/// Labels: category ids map to contiguous labels `0..<C` in ascending id order (`categoryIDs[label]` is the COCO id
/// again). mmdetection takes `cat_ids = coco.get_cat_ids(cat_names=classes)`, which keeps the order the categories are
/// listed in the file (pycocotools' `getCatIds` filters `dataset['categories']` in place); COCO's own files list them by
/// ascending id, so the labels are the same there. There is no class-name list here: every listed category is a class.
///
/// Boxes, per image (images in file order, annotations in file order, as `coco.get_img_ids()` and `get_ann_ids` give
/// them), with mmdetection's rules in its order:
/// - an annotation with a true `ignore` key is skipped;
/// - one whose box does not overlap the image (`max(0, min(x + w, width) - max(x, 0))` times the same in y is 0)
///   is skipped;
/// - one with `area <= 0`, `w < 1` or `h < 1` is skipped;
/// - the box is `[x, y, x + w, y + h]` (sums in double precision, stored as `Float`, as mmdetection's float32 arrays);
///   a true `iscrowd` puts it in the image's ignored boxes (mmdetection's `ignore_flag = 1`), otherwise it is a box
///   with its label.
///
/// Images kept (never filtered in test mode): with `filterEmptyGT`, an image is dropped when no annotation at all
/// refers to it. This is mmdetection's rule: it keeps the images of `cat_img_map`, which lists every annotation,
/// crowd and skipped ones included, so an image whose only annotations are crowd regions or degenerate boxes is kept
/// with no boxes (`counts.imagesKeptWithoutBoxes`); on train2017 it keeps 117,266 of 118,287 images. Then an image
/// whose `min(width, height) < minImageSize` is dropped.
///
/// Stricter than mmdetection (which would pass them on silently), these are errors naming the file: malformed JSON
/// (line:column), a missing key (`images`/`categories` at the top level; an image's `id`, `file_name`, `width`,
/// `height`; a category's `id`; an annotation's `id`, `image_id`, `category_id`, `bbox`, `area`), a value of the wrong
/// type, a negative bbox width or height (naming the annotation id), an annotation whose `category_id` is not in
/// `categories` or whose `image_id` is not in `images`, and a repeated image, category or annotation id (mmdetection
/// asserts unique annotation ids). A file without `annotations` (an image-info file) has no boxes.
///
/// Reading skips `segmentation` and every other unused member without building it, from a memory-mapped file whose
/// pages are given back as the reader passes them: train2017's 448 MB take a few seconds and well under 0.5 GB.
public struct COCODetectionIndex: Sendable, Equatable {
    /// Which images are kept.
    public struct Options: Sendable, Equatable {
        /// Drop images that no annotation refers to (training).
        public var filterEmptyGT: Bool
        /// Drop images whose shorter side is below this many pixels (training).
        public var minImageSize: Int
        /// Keep every image (validation and test): neither filter applies.
        public var testMode: Bool

        public init(filterEmptyGT: Bool = true, minImageSize: Int = 32, testMode: Bool = false) {
            self.filterEmptyGT = filterEmptyGT
            self.minImageSize = minImageSize
            self.testMode = testMode
        }

        /// mmdetection's COCO training set: `filter_empty_gt=True, min_size=32`.
        public static let training = Options()
        /// mmdetection's COCO validation set: `test_mode=True`, every image.
        public static let test = Options(testMode: true)
    }

    /// What reading kept and dropped.
    public struct Counts: Sendable, Equatable {
        /// Images and annotations listed in the file.
        public var imagesInFile = 0
        public var annotationsInFile = 0
        /// Images dropped because no annotation refers to them (`filterEmptyGT`).
        public var imagesDroppedEmpty = 0
        /// Images dropped because `min(width, height) < minImageSize`.
        public var imagesDroppedSmall = 0
        /// Images kept that have neither boxes nor ignored boxes.
        public var imagesKeptWithoutBoxes = 0
        /// Boxes (with labels) and ignored (crowd) boxes of the kept images.
        public var boxes = 0
        public var ignoredBoxes = 0
        /// Annotations of kept images skipped by the rules (`ignore`, outside the image, area <= 0, w < 1, h < 1).
        public var annotationsSkipped = 0
        /// Annotations of dropped images.
        public var annotationsOfDroppedImages = 0

        public init() {}
    }

    public let options: Options
    public let counts: Counts
    /// The COCO id of each label.
    public let categoryIDs: [Int]
    /// The name of each label ("" when the file has none).
    public let categoryNames: [String]
    /// Per kept image, in file order: COCO id, width and height in pixels.
    public let imageIDs: [Int]
    public let widths: [Int32]
    public let heights: [Int32]
    /// File names (UTF-8), image `i`'s between `fileNameOffsets[i]` and `fileNameOffsets[i + 1]`.
    public let fileNameBytes: [UInt8]
    public let fileNameOffsets: [Int32]
    /// Boxes `[x1, y1, x2, y2]`, four floats each, and their labels; image `i` has boxes
    /// `boxOffsets[i]..<boxOffsets[i + 1]`.
    public let boxes: [Float]
    public let labels: [Int32]
    public let boxOffsets: [Int32]
    /// Crowd boxes `[x1, y1, x2, y2]` (mmdetection's `gt_bboxes_ignore`); image `i` has
    /// `ignoredBoxOffsets[i]..<ignoredBoxOffsets[i + 1]`.
    public let ignoredBoxes: [Float]
    public let ignoredBoxOffsets: [Int32]

    /// The number of kept images.
    public var count: Int { imageIDs.count }
    /// The number of classes.
    public var classCount: Int { categoryIDs.count }

    public func fileName(_ image: Int) -> String {
        String(decoding: fileNameBytes[Int(fileNameOffsets[image])..<Int(fileNameOffsets[image + 1])], as: UTF8.self)
    }

    /// Image `image`'s boxes, four floats `[x1, y1, x2, y2]` each.
    public func boxes(_ image: Int) -> ArraySlice<Float> {
        boxes[Int(boxOffsets[image]) * 4..<Int(boxOffsets[image + 1]) * 4]
    }

    public func labels(_ image: Int) -> ArraySlice<Int32> {
        labels[Int(boxOffsets[image])..<Int(boxOffsets[image + 1])]
    }

    public func ignoredBoxes(_ image: Int) -> ArraySlice<Float> {
        ignoredBoxes[Int(ignoredBoxOffsets[image]) * 4..<Int(ignoredBoxOffsets[image + 1]) * 4]
    }

    // MARK: Reading

    /// Reads an instances file (memory-mapped; pages are given back as they are passed).
    public init(path: String, options: Options = .training) throws {
        let file = try MappedFile(path: path)
        var scanner = JSONScanner(buffer: file.bytes, source: path)
        try self.init(scanner: &scanner, options: options, scanned: file.scanned(upTo:))
        withExtendedLifetime(file) {}
    }

    /// Reads instances JSON; `source` names it in messages.
    public init(json: [UInt8], source: String, options: Options = .training) throws {
        self = try JSONScanner.scan(json, source: source) { scanner in
            try COCODetectionIndex(scanner: &scanner, options: options, scanned: { _ in })
        }
    }

    private init(scanner: inout JSONScanner, options: Options, scanned: (Int) -> Void) throws {
        let source = scanner.source
        guard scanner.peekKind() == .object else {
            if scanner.peekKind() == nil { _ = try scanner.value() }  // a syntax error, reported with its position
            throw COCOError("\(source): the top level is not an object (a COCO instances file has images, annotations, categories)")
        }
        var raw = RawInstances()
        var sawImages = false, sawCategories = false
        try scanner.object { scanner, key in
            switch key {
            case "images":
                sawImages = true
                raw.images = RawImages()
                try readRecords(&scanner, source: source, list: "images", keys: ["id", "file_name", "width", "height"],
                                scanned: scanned) { index, fields in
                    let id = try fields.integer("id")
                    fields.record = "image id \(id) (images[\(index)])"
                    raw.images.ids.append(id)
                    raw.images.fileNameBytes.append(contentsOf: try fields.string("file_name").utf8)
                    raw.images.fileNameOffsets.append(Int32(raw.images.fileNameBytes.count))
                    func size(_ key: String) throws -> Int32 {
                        let size = try fields.integer(key)
                        guard (0...Int(Int32.max)).contains(size) else {
                            throw COCOError("\(source): \(fields.record): '\(key)' must be a non-negative 32-bit integer, not \(size)")
                        }
                        return Int32(size)
                    }
                    raw.images.widths.append(try size("width"))
                    raw.images.heights.append(try size("height"))
                }
            case "categories":
                sawCategories = true
                raw.categories = []
                try readRecords(&scanner, source: source, list: "categories", keys: ["id", "name"]) { index, fields in
                    raw.categories.append((try fields.integer("id"), try fields.optionalString("name") ?? ""))
                }
            case "annotations":
                raw.annotations = RawAnnotations()
                try readRecords(&scanner, source: source, list: "annotations",
                                keys: ["id", "image_id", "category_id", "bbox", "area", "iscrowd", "ignore"],
                                scanned: scanned) { index, fields in
                    let id = try fields.integer("id")
                    fields.record = "annotation id \(id) (annotations[\(index)])"
                    let box = try fields.box("bbox")
                    if box.width < 0 || box.height < 0 {
                        let (what, value) = box.width < 0 ? ("width", box.width) : ("height", box.height)
                        throw COCOError("\(source): \(fields.record) has a negative \(what) (\(formatNumber(value))) in its bbox [x, y, width, height]")
                    }
                    raw.annotations.append(id: id, imageID: try fields.integer("image_id"), categoryID: try fields.integer("category_id"),
                                           box: box, area: try fields.number("area"), crowd: try fields.flag("iscrowd"),
                                           ignore: try fields.flag("ignore"))
                }
            default:
                try scanner.skipValue()
            }
        }
        try scanner.finish()
        guard sawImages else { throw COCOError("\(source): the top-level object has no key 'images'") }
        guard sawCategories else { throw COCOError("\(source): the top-level object has no key 'categories'") }
        self = try COCODetectionIndex(raw, options: options, source: source)
    }

    /// Everything read, before the rules.
    private struct RawImages {
        var ids: [Int] = []
        var widths: [Int32] = []
        var heights: [Int32] = []
        var fileNameBytes: [UInt8] = []
        var fileNameOffsets: [Int32] = [0]
    }

    private struct RawAnnotations {
        static let crowd: UInt8 = 1, ignore: UInt8 = 2, nonPositiveArea: UInt8 = 4
        var ids: [Int] = []
        var imageIDs: [Int] = []
        var categoryIDs: [Int] = []
        /// x, y, w, h each.
        var boxes: [Double] = []
        var flags: [UInt8] = []

        mutating func append(id: Int, imageID: Int, categoryID: Int, box: COCOBox, area: Double, crowd: Bool, ignore: Bool) {
            ids.append(id)
            imageIDs.append(imageID)
            categoryIDs.append(categoryID)
            boxes.append(box.x)
            boxes.append(box.y)
            boxes.append(box.width)
            boxes.append(box.height)
            flags.append((crowd ? Self.crowd : 0) | (ignore ? Self.ignore : 0) | (area <= 0 ? Self.nonPositiveArea : 0))
        }
    }

    private struct RawInstances {
        var images = RawImages()
        var categories: [(id: Int, name: String)] = []
        var annotations = RawAnnotations()
    }

    private init(_ raw: RawInstances, options: Options, source: String) throws {
        // Labels: categories by ascending id.
        let categories = raw.categories.enumerated().sorted { ($0.element.id, $0.offset) < ($1.element.id, $1.offset) }
        for k in categories.indices.dropFirst() where categories[k].element.id == categories[k - 1].element.id {
            throw COCOError("\(source): categories[\(categories[k].offset)] repeats the id \(categories[k].element.id) of categories[\(categories[k - 1].offset)]; category ids must be unique")
        }
        var labelOf: [Int: Int32] = [:]
        for (label, category) in categories.enumerated() { labelOf[category.element.id] = Int32(label) }

        let images = raw.images
        var imageIndex: [Int: Int32] = [:]
        imageIndex.reserveCapacity(images.ids.count)
        for (index, id) in images.ids.enumerated() {
            if let earlier = imageIndex.updateValue(Int32(index), forKey: id) {
                throw COCOError("\(source): images[\(index)] repeats the id \(id) of images[\(earlier)]; image ids must be unique")
            }
        }

        // Annotation ids unique (mmdetection asserts it): sorted, neighbours compared.
        let annotations = raw.annotations
        let n = annotations.ids.count
        var sortedIDs = annotations.ids
        sortedIDs.sort()
        for k in sortedIDs.indices.dropFirst() where sortedIDs[k] == sortedIDs[k - 1] {
            let rows = annotations.ids.indices.filter { annotations.ids[$0] == sortedIDs[k] }
            throw COCOError("\(source): annotation id \(sortedIDs[k]) (annotations[\(rows[1])]) repeats the id of annotations[\(rows[0])]; annotation ids must be unique")
        }

        // Each annotation's image and label; which images some annotation refers to.
        var annotationImage = [Int32](repeating: 0, count: n)
        var annotationLabel = [Int32](repeating: 0, count: n)
        var referenced = [Bool](repeating: false, count: images.ids.count)
        for k in 0..<n {
            let name = "annotation id \(annotations.ids[k]) (annotations[\(k)])"
            guard let label = labelOf[annotations.categoryIDs[k]] else {
                throw COCOError("\(source): \(name) has category_id \(annotations.categoryIDs[k]), which is not in 'categories'")
            }
            guard let image = imageIndex[annotations.imageIDs[k]] else {
                throw COCOError("\(source): \(name) has image_id \(annotations.imageIDs[k]), which is not in 'images'")
            }
            annotationLabel[k] = label
            annotationImage[k] = image
            referenced[Int(image)] = true
        }

        // Images kept, and their new positions.
        var counts = Counts()
        counts.imagesInFile = images.ids.count
        counts.annotationsInFile = n
        var newIndex = [Int32](repeating: -1, count: images.ids.count)
        var kept: [Int] = []
        for i in 0..<images.ids.count {
            if !options.testMode {
                if options.filterEmptyGT && !referenced[i] { counts.imagesDroppedEmpty += 1; continue }
                if Int(min(images.widths[i], images.heights[i])) < options.minImageSize { counts.imagesDroppedSmall += 1; continue }
            }
            newIndex[i] = Int32(kept.count)
            kept.append(i)
        }

        // Which annotations become boxes, which ignored boxes (mmdetection's rules, in its order).
        enum Use: UInt8 { case dropped, skipped, box, ignored }
        var use = [Use](repeating: .dropped, count: n)
        var boxCount = [Int32](repeating: 0, count: kept.count + 1), ignoredCount = [Int32](repeating: 0, count: kept.count + 1)
        for k in 0..<n {
            let image = Int(annotationImage[k]), target = Int(newIndex[image])
            guard target >= 0 else { counts.annotationsOfDroppedImages += 1; continue }
            let flags = annotations.flags[k]
            let x = annotations.boxes[4 * k], y = annotations.boxes[4 * k + 1]
            let w = annotations.boxes[4 * k + 2], h = annotations.boxes[4 * k + 3]
            let interW = max(0, min(x + w, Double(images.widths[image])) - max(x, 0))
            let interH = max(0, min(y + h, Double(images.heights[image])) - max(y, 0))
            if flags & RawAnnotations.ignore != 0 || interW * interH == 0 || flags & RawAnnotations.nonPositiveArea != 0 || w < 1 || h < 1 {
                use[k] = .skipped
                counts.annotationsSkipped += 1
            } else if flags & RawAnnotations.crowd != 0 {
                use[k] = .ignored
                ignoredCount[target + 1] += 1
            } else {
                use[k] = .box
                boxCount[target + 1] += 1
            }
        }
        for i in 0..<kept.count {
            boxCount[i + 1] += boxCount[i]
            ignoredCount[i + 1] += ignoredCount[i]
        }
        counts.boxes = Int(boxCount[kept.count])
        counts.ignoredBoxes = Int(ignoredCount[kept.count])

        // Fill in file order per image (a counting sort by image keeps the annotations' order).
        var boxes = [Float](repeating: 0, count: 4 * counts.boxes), labels = [Int32](repeating: 0, count: counts.boxes)
        var ignored = [Float](repeating: 0, count: 4 * counts.ignoredBoxes)
        var nextBox = boxCount, nextIgnored = ignoredCount
        for k in 0..<n where use[k] == .box || use[k] == .ignored {
            let target = Int(newIndex[Int(annotationImage[k])])
            let x = annotations.boxes[4 * k], y = annotations.boxes[4 * k + 1]
            let corners = (Float(x), Float(y), Float(x + annotations.boxes[4 * k + 2]), Float(y + annotations.boxes[4 * k + 3]))
            func store(_ array: inout [Float], _ slot: Int) {
                array[4 * slot] = corners.0
                array[4 * slot + 1] = corners.1
                array[4 * slot + 2] = corners.2
                array[4 * slot + 3] = corners.3
            }
            if use[k] == .box {
                let slot = Int(nextBox[target])
                nextBox[target] += 1
                store(&boxes, slot)
                labels[slot] = annotationLabel[k]
            } else {
                let slot = Int(nextIgnored[target])
                nextIgnored[target] += 1
                store(&ignored, slot)
            }
        }

        var fileNameBytes: [UInt8] = [], fileNameOffsets: [Int32] = [0]
        fileNameOffsets.reserveCapacity(kept.count + 1)
        for i in kept {
            fileNameBytes.append(contentsOf: images.fileNameBytes[Int(images.fileNameOffsets[i])..<Int(images.fileNameOffsets[i + 1])])
            fileNameOffsets.append(Int32(fileNameBytes.count))
        }
        for i in 0..<kept.count where boxCount[i + 1] == boxCount[i] && ignoredCount[i + 1] == ignoredCount[i] {
            counts.imagesKeptWithoutBoxes += 1
        }

        self.options = options
        self.counts = counts
        categoryIDs = categories.map(\.element.id)
        categoryNames = categories.map(\.element.name)
        imageIDs = kept.map { images.ids[$0] }
        widths = kept.map { images.widths[$0] }
        heights = kept.map { images.heights[$0] }
        self.fileNameBytes = fileNameBytes
        self.fileNameOffsets = fileNameOffsets
        self.boxes = boxes
        self.labels = labels
        boxOffsets = boxCount
        ignoredBoxes = ignored
        ignoredBoxOffsets = ignoredCount
    }

    private init(options: Options, counts: Counts, categoryIDs: [Int], categoryNames: [String], imageIDs: [Int], widths: [Int32],
                 heights: [Int32], fileNameBytes: [UInt8], fileNameOffsets: [Int32], boxes: [Float], labels: [Int32],
                 boxOffsets: [Int32], ignoredBoxes: [Float], ignoredBoxOffsets: [Int32]) {
        self.options = options
        self.counts = counts
        self.categoryIDs = categoryIDs
        self.categoryNames = categoryNames
        self.imageIDs = imageIDs
        self.widths = widths
        self.heights = heights
        self.fileNameBytes = fileNameBytes
        self.fileNameOffsets = fileNameOffsets
        self.boxes = boxes
        self.labels = labels
        self.boxOffsets = boxOffsets
        self.ignoredBoxes = ignoredBoxes
        self.ignoredBoxOffsets = ignoredBoxOffsets
    }

    // MARK: Serialized form

    private static let magic = Array("LORSCOCOIDX1".utf8)

    /// The index as bytes (little-endian; `init(serialized:)` reads them back equal): one rank reads the JSON and
    /// sends these to the others.
    public func serialized() -> [UInt8] {
        var out = ByteWriter()
        out.bytes.append(contentsOf: Self.magic)
        out.int(options.filterEmptyGT ? 1 : 0)
        out.int(options.minImageSize)
        out.int(options.testMode ? 1 : 0)
        for value in [counts.imagesInFile, counts.annotationsInFile, counts.imagesDroppedEmpty, counts.imagesDroppedSmall,
                      counts.imagesKeptWithoutBoxes, counts.boxes, counts.ignoredBoxes, counts.annotationsSkipped,
                      counts.annotationsOfDroppedImages] {
            out.int(value)
        }
        out.array(categoryIDs)
        var names: [UInt8] = [], nameOffsets: [Int32] = [0]
        for name in categoryNames {
            names.append(contentsOf: name.utf8)
            nameOffsets.append(Int32(names.count))
        }
        out.array(nameOffsets)
        out.array(names)
        out.array(imageIDs)
        out.array(widths)
        out.array(heights)
        out.array(fileNameOffsets)
        out.array(fileNameBytes)
        out.array(boxes)
        out.array(labels)
        out.array(boxOffsets)
        out.array(ignoredBoxes)
        out.array(ignoredBoxOffsets)
        return out.bytes
    }

    /// Reads `serialized()` bytes; anything else (wrong header, truncated, inconsistent sizes) is a `COCOError`.
    public init(serialized bytes: [UInt8]) throws {
        var input = ByteReader(bytes: bytes)
        guard bytes.starts(with: Self.magic) else { throw COCOError("serialized COCO index: wrong header (not written by serialized())") }
        input.offset = Self.magic.count
        let options = Options(filterEmptyGT: try input.int() != 0, minImageSize: try input.int(), testMode: try input.int() != 0)
        var counts = Counts()
        counts.imagesInFile = try input.int()
        counts.annotationsInFile = try input.int()
        counts.imagesDroppedEmpty = try input.int()
        counts.imagesDroppedSmall = try input.int()
        counts.imagesKeptWithoutBoxes = try input.int()
        counts.boxes = try input.int()
        counts.ignoredBoxes = try input.int()
        counts.annotationsSkipped = try input.int()
        counts.annotationsOfDroppedImages = try input.int()
        let categoryIDs: [Int] = try input.array()
        let nameOffsets: [Int32] = try input.array(), names: [UInt8] = try input.array()
        try ByteReader.checkOffsets(nameOffsets, count: categoryIDs.count, total: names.count, what: "category names")
        let categoryNames = (0..<categoryIDs.count).map {
            String(decoding: names[Int(nameOffsets[$0])..<Int(nameOffsets[$0 + 1])], as: UTF8.self)
        }
        let imageIDs: [Int] = try input.array(), widths: [Int32] = try input.array(), heights: [Int32] = try input.array()
        let fileNameOffsets: [Int32] = try input.array(), fileNameBytes: [UInt8] = try input.array()
        let boxes: [Float] = try input.array(), labels: [Int32] = try input.array(), boxOffsets: [Int32] = try input.array()
        let ignoredBoxes: [Float] = try input.array(), ignoredBoxOffsets: [Int32] = try input.array()
        guard input.offset == bytes.count else { throw COCOError("serialized COCO index: \(bytes.count - input.offset) bytes after the end") }
        let n = imageIDs.count
        guard widths.count == n, heights.count == n, boxes.count == 4 * labels.count, ignoredBoxes.count % 4 == 0,
              labels.allSatisfy({ (0..<Int32(categoryIDs.count)).contains($0) }) else {
            throw COCOError("serialized COCO index: inconsistent array sizes or labels")
        }
        try ByteReader.checkOffsets(fileNameOffsets, count: n, total: fileNameBytes.count, what: "file names")
        try ByteReader.checkOffsets(boxOffsets, count: n, total: labels.count, what: "boxes")
        try ByteReader.checkOffsets(ignoredBoxOffsets, count: n, total: ignoredBoxes.count / 4, what: "ignored boxes")
        self.init(options: options, counts: counts, categoryIDs: categoryIDs, categoryNames: categoryNames, imageIDs: imageIDs,
                  widths: widths, heights: heights, fileNameBytes: fileNameBytes, fileNameOffsets: fileNameOffsets, boxes: boxes,
                  labels: labels, boxOffsets: boxOffsets, ignoredBoxes: ignoredBoxes, ignoredBoxOffsets: ignoredBoxOffsets)
    }
}

#if _endian(big)
#error("the serialized COCO index is little-endian; a big-endian host needs byte swapping")
#endif

/// Appends fixed-width little-endian values and length-prefixed arrays.
private struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func int(_ value: Int) {
        withUnsafeBytes(of: Int64(value).littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func array<T: BitwiseCopyable>(_ values: [T]) {
        int(values.count)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    private func truncated() -> COCOError { COCOError("serialized COCO index: truncated at byte \(offset) of \(bytes.count)") }

    mutating func int() throws -> Int {
        guard offset + 8 <= bytes.count else { throw truncated() }
        var value: Int64 = 0
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset..<offset + 8]) }
        offset += 8
        return Int(Int64(littleEndian: value))
    }

    mutating func array<T: BitwiseCopyable>(_: T.Type = T.self) throws -> [T] {
        let count = try int()
        let size = MemoryLayout<T>.stride
        guard count >= 0, count <= (bytes.count - offset) / size else { throw truncated() }
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + count * size]))
            }
            initialized = count
        }
        offset += count * size
        return values
    }

    /// `offsets` has `count + 1` entries from 0 to `total`, never decreasing.
    static func checkOffsets(_ offsets: [Int32], count: Int, total: Int, what: String) throws {
        guard offsets.count == count + 1, offsets.first == 0, Int(offsets[count]) == total,
              zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw COCOError("serialized COCO index: inconsistent offsets of the \(what)")
        }
    }
}
