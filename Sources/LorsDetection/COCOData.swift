import Foundation

/// An error reading or checking COCO files: the description names the file and, where it applies, the record
/// (its index, an annotation's id), the key, or the line:column of malformed JSON.
public struct COCOError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A box `[x, y, width, height]` in pixels, as COCO stores it.
public struct COCOBox: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// A ground-truth object of a COCO instances file.
public struct COCOAnnotation: Sendable, Equatable {
    public var id: Int
    public var imageID: Int
    public var categoryID: Int
    public var box: COCOBox
    /// The annotation's `area` as stored (for masks the mask area, not width·height); it decides the area range.
    public var area: Double
    /// A crowd region: never a missed object, and any detection inside it is ignored.
    public var isCrowd: Bool

    public init(id: Int, imageID: Int, categoryID: Int, box: COCOBox, area: Double, isCrowd: Bool = false) {
        self.id = id
        self.imageID = imageID
        self.categoryID = categoryID
        self.box = box
        self.area = area
        self.isCrowd = isCrowd
    }
}

/// A category of a COCO instances file.
public struct COCOCategory: Sendable, Equatable {
    public var id: Int
    public var name: String

    public init(id: Int, name: String = "") {
        self.id = id
        self.name = name
    }
}

/// A detection of a results file (`{"image_id", "category_id", "bbox", "score"}`).
public struct COCODetection: Sendable, Equatable {
    public var imageID: Int
    public var categoryID: Int
    public var box: COCOBox
    public var score: Double

    public init(imageID: Int, categoryID: Int, box: COCOBox, score: Double) {
        self.imageID = imageID
        self.categoryID = categoryID
        self.box = box
        self.score = score
    }

    /// width · height, the area that puts a detection in an area range (pycocotools' `loadRes` does the same).
    public var area: Double { box.width * box.height }
}

/// The ground truth of a COCO instances file: its images, categories and annotations (in file order).
///
/// Read: `images[].id`, `categories[].id` (and `name`), `annotations[]` with `id`, `image_id`, `category_id`,
/// `bbox` `[x, y, width, height]`, `area` and `iscrowd` (0/1 or a boolean; 0 when absent). Every other key
/// (segmentation, info, licenses, ...) is skipped. Ids are integers. Checked: every key listed is present with the
/// right type, annotation ids are unique, no bbox has a negative width or height, and every annotation's image and
/// category are listed in `images` and `categories`.
public struct COCOGroundTruth: Sendable {
    /// Image ids as listed (a repeated id counts once).
    public var imageIDs: [Int]
    public var categories: [COCOCategory]
    public var annotations: [COCOAnnotation]

    /// Checks the records as `load` does; `source` names them in messages.
    public init(imageIDs: [Int], categories: [COCOCategory], annotations: [COCOAnnotation], source: String = "ground truth") throws {
        self.imageIDs = imageIDs
        self.categories = categories
        self.annotations = annotations
        try check(source: source)
    }

    private init(unchecked imageIDs: [Int], categories: [COCOCategory], annotations: [COCOAnnotation]) {
        self.imageIDs = imageIDs
        self.categories = categories
        self.annotations = annotations
    }

    /// Reads and checks an instances file.
    public static func load(path: String) throws -> COCOGroundTruth {
        try parse(try readBytes(path), source: path)
    }

    /// Reads and checks instances JSON; `source` names it in messages.
    public static func parse(_ bytes: [UInt8], source: String) throws -> COCOGroundTruth {
        try JSONScanner.scan(bytes, source: source) { scanner in try parse(&scanner, source: source) }
    }

    private static func parse(_ scanner: inout JSONScanner, source: String) throws -> COCOGroundTruth {
        guard scanner.peekKind() == .object else {
            if scanner.peekKind() == nil { _ = try scanner.value() }  // a syntax error, reported with its position
            throw COCOError("\(source): the top level is not an object (a COCO instances file has images, annotations, categories)")
        }
        var imageIDs: [Int]?, categories: [COCOCategory]?, annotations: [COCOAnnotation] = []
        var annotationRows: [Int] = []
        try scanner.object { scanner, key in
            switch key {
            case "images":
                var ids: [Int] = []
                try readRecords(&scanner, source: source, list: "images", keys: ["id"]) { index, fields in
                    ids.append(try fields.integer("id"))
                }
                imageIDs = ids
            case "categories":
                var list: [COCOCategory] = []
                try readRecords(&scanner, source: source, list: "categories", keys: ["id", "name"]) { index, fields in
                    list.append(COCOCategory(id: try fields.integer("id"), name: try fields.optionalString("name") ?? ""))
                }
                categories = list
            case "annotations":
                annotations = []
                annotationRows = []
                try readRecords(&scanner, source: source, list: "annotations",
                                keys: ["id", "image_id", "category_id", "bbox", "area", "iscrowd"]) { index, fields in
                    let id = try fields.integer("id")
                    fields.record = "annotation id \(id) (annotations[\(index)])"
                    annotations.append(COCOAnnotation(id: id, imageID: try fields.integer("image_id"),
                                                      categoryID: try fields.integer("category_id"), box: try fields.box("bbox"),
                                                      area: try fields.number("area"), isCrowd: try fields.flag("iscrowd")))
                    annotationRows.append(index)
                }
            default:
                try scanner.skipValue()
            }
        }
        try scanner.finish()
        guard let imageIDs else { throw COCOError("\(source): the top-level object has no key 'images'") }
        guard let categories else { throw COCOError("\(source): the top-level object has no key 'categories'") }
        let truth = COCOGroundTruth(unchecked: imageIDs, categories: categories, annotations: annotations)
        try truth.check(source: source, rows: annotationRows)
        return truth
    }

    private func check(source: String, rows: [Int]? = nil) throws {
        let images = Set(imageIDs), categoryIDs = Set(categories.map(\.id))
        var seen: [Int: Int] = [:]
        for (position, annotation) in annotations.enumerated() {
            let row = rows?[position] ?? position
            let name = "annotation id \(annotation.id) (annotations[\(row)])"
            if let earlier = seen.updateValue(row, forKey: annotation.id) {
                throw COCOError("\(source): \(name) repeats the id of annotations[\(earlier)]; annotation ids must be unique")
            }
            if annotation.box.width < 0 || annotation.box.height < 0 {
                let (what, value) = annotation.box.width < 0 ? ("width", annotation.box.width) : ("height", annotation.box.height)
                throw COCOError("\(source): \(name) has a negative \(what) (\(formatNumber(value))) in its bbox [x, y, width, height]")
            }
            if !categoryIDs.contains(annotation.categoryID) {
                throw COCOError("\(source): \(name) has category_id \(annotation.categoryID), which is not in 'categories'")
            }
            if !images.contains(annotation.imageID) {
                throw COCOError("\(source): \(name) has image_id \(annotation.imageID), which is not in 'images'")
            }
        }
    }
}

/// Reading a detection results file: a JSON array of `{"image_id", "category_id", "bbox", "score"}` (other keys are
/// skipped). Checked against the ground truth: every image id is one of its images and every category id one of
/// its categories; no bbox has a negative width or height.
public enum COCODetections {
    /// Reads and checks a results file.
    public static func load(path: String, groundTruth: COCOGroundTruth, groundTruthSource: String? = nil) throws -> [COCODetection] {
        try parse(try readBytes(path), source: path, groundTruth: groundTruth, groundTruthSource: groundTruthSource)
    }

    /// Reads and checks results JSON; `source` names it in messages.
    public static func parse(_ bytes: [UInt8], source: String, groundTruth: COCOGroundTruth,
                             groundTruthSource: String? = nil) throws -> [COCODetection] {
        try JSONScanner.scan(bytes, source: source) { scanner in
            try parse(&scanner, source: source, groundTruth: groundTruth, groundTruthSource: groundTruthSource)
        }
    }

    private static func parse(_ scanner: inout JSONScanner, source: String, groundTruth: COCOGroundTruth,
                              groundTruthSource: String?) throws -> [COCODetection] {
        guard scanner.peekKind() == .array else {
            if scanner.peekKind() == nil { _ = try scanner.value() }
            throw COCOError("\(source): the top level is not an array (a results file is a list of detections)")
        }
        var detections: [COCODetection] = []
        try readRecords(&scanner, source: source, list: nil, keys: ["image_id", "category_id", "bbox", "score"]) { index, fields in
            fields.record = "detection \(index)"
            let detection = COCODetection(imageID: try fields.integer("image_id"), categoryID: try fields.integer("category_id"),
                                          box: try fields.box("bbox"), score: try fields.number("score"))
            detections.append(detection)
        }
        try scanner.finish()
        try check(detections, source: source, groundTruth: groundTruth, groundTruthSource: groundTruthSource ?? "the ground truth")
        return detections
    }

    /// Checks detections against the ground truth as `load` does.
    public static func check(_ detections: [COCODetection], source: String, groundTruth: COCOGroundTruth,
                             groundTruthSource: String = "the ground truth") throws {
        let images = Set(groundTruth.imageIDs), categories = Set(groundTruth.categories.map(\.id))
        for (index, detection) in detections.enumerated() {
            let name = "detection \(index) (image_id \(detection.imageID))"
            if detection.box.width < 0 || detection.box.height < 0 {
                let (what, value) = detection.box.width < 0 ? ("width", detection.box.width) : ("height", detection.box.height)
                throw COCOError("\(source): \(name) has a negative \(what) (\(formatNumber(value))) in its bbox [x, y, width, height]")
            }
            if !categories.contains(detection.categoryID) {
                throw COCOError("\(source): \(name) has category_id \(detection.categoryID), which is not in the categories of \(groundTruthSource)")
            }
            if !images.contains(detection.imageID) {
                throw COCOError("\(source): \(name) has image_id \(detection.imageID), which is not in the images of \(groundTruthSource)")
            }
        }
    }
}

// MARK: - Reading helpers

func readBytes(_ path: String) throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw COCOError("\(path): no such file") }
    guard !isDirectory.boolValue else { throw COCOError("\(path): is a directory, not a JSON file") }
    guard let data = FileManager.default.contents(atPath: path) else { throw COCOError("\(path): cannot be read") }
    return [UInt8](data)
}

/// A number as messages show it: integers without a fraction.
func formatNumber(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
    return value.description
}

/// The wanted members of one record object, with typed access whose errors name the record and the key.
struct RecordFields {
    let source: String
    /// How messages name the record ("annotations[3]", then "annotation id 7 (annotations[3])" once the id is known).
    var record: String
    let keys: [String]
    var values: [JSONNode?]

    private func present(_ key: String) throws -> JSONNode {
        guard let slot = keys.firstIndex(of: key), let value = values[slot] else {
            throw COCOError("\(source): \(record) has no key '\(key)'")
        }
        return value
    }

    private func optional(_ key: String) -> JSONNode? {
        keys.firstIndex(of: key).flatMap { values[$0] }
    }

    private func wrongType(_ key: String, _ expected: String, _ found: JSONNode) -> COCOError {
        COCOError("\(source): \(record): '\(key)' must be \(expected), not \(found.kindDescription)")
    }

    func integer(_ key: String) throws -> Int {
        let value = try present(key)
        if case .number(let number) = value {
            if let integer = number.integer { return integer }
            if number.value == number.value.rounded(), abs(number.value) < 9.0e15 { return Int(number.value) }
        }
        throw wrongType(key, "an integer", value)
    }

    func number(_ key: String) throws -> Double {
        let value = try present(key)
        guard case .number(let number) = value else { throw wrongType(key, "a number", value) }
        return number.value
    }

    func string(_ key: String) throws -> String {
        let value = try present(key)
        guard case .string(let text) = value else { throw wrongType(key, "a string", value) }
        return text
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = optional(key) else { return nil }
        if case .string(let text) = value { return text }
        if case .null = value { return nil }
        throw wrongType(key, "a string", value)
    }

    /// A 0/1 (or boolean) flag; false when absent.
    func flag(_ key: String) throws -> Bool {
        guard let value = optional(key) else { return false }
        switch value {
        case .bool(let flag): return flag
        case .number(let number): return number.value != 0
        default: throw wrongType(key, "0, 1 or a boolean", value)
        }
    }

    func box(_ key: String) throws -> COCOBox {
        let value = try present(key)
        guard case .array(let elements) = value, elements.count == 4 else {
            throw wrongType(key, "an array of 4 numbers [x, y, width, height]", value)
        }
        var numbers: [Double] = []
        for element in elements {
            guard case .number(let number) = element else { throw wrongType(key, "an array of 4 numbers [x, y, width, height]", value) }
            numbers.append(number.value)
        }
        return COCOBox(x: numbers[0], y: numbers[1], width: numbers[2], height: numbers[3])
    }
}

/// Reads an array of record objects, keeping only `keys` of each (a repeated key keeps its last value, as Python's
/// json does) and calling `record` with the index and the fields. `list` names the array in messages
/// ("annotations"); nil for a top-level array. `scanned` is called after each record with the scanner's offset.
func readRecords(_ scanner: inout JSONScanner, source: String, list: String?, keys: [String],
                 scanned: (Int) -> Void = { _ in }, _ record: (Int, inout RecordFields) throws -> Void) throws {
    guard scanner.peekKind() == .array else {
        let found = try scanner.value()
        throw COCOError("\(source): \(list.map { "'\($0)'" } ?? "the top level") must be an array, not \(found.kindDescription)")
    }
    try scanner.array { scanner, index in
        let name = list.map { "\($0)[\(index)]" } ?? "record \(index)"
        guard scanner.peekKind() == .object else {
            let found = try scanner.value()
            throw COCOError("\(source): \(name) must be an object, not \(found.kindDescription)")
        }
        var fields = RecordFields(source: source, record: name, keys: keys, values: Array(repeating: nil, count: keys.count))
        try scanner.object { scanner, key in
            if let slot = keys.firstIndex(of: key) {
                fields.values[slot] = try scanner.value()
            } else {
                try scanner.skipValue()
            }
        }
        try record(index, &fields)
        scanned(scanner.offset)
    }
}
