/// A parsed JSON value, as much of it as the COCO readers keep (objects the readers look into are walked member by
/// member instead, so large unused members such as polygons are skipped without being built).
enum JSONNode {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONNode])
    case object([(key: String, value: JSONNode)])

    /// What the value is, for messages ("a string", "an array", ...).
    var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON number: its value as the nearest `Double` (correctly rounded, as Python's `json` reads it) and, when the
/// text is an integer without fraction or exponent that fits in `Int`, that integer exactly.
struct JSONNumber {
    let value: Double
    let integer: Int?
}

/// A strict JSON reader (RFC 8259) over UTF-8 bytes. Malformed text is a `COCOError` naming the source and the
/// line:column (1-based; columns count characters) of the offending byte. Numbers are correctly rounded to the
/// nearest `Double`, so a number reads as the same value it has in Python. Nesting deeper than 512 levels is refused.
struct JSONScanner {
    /// The kind of the next value, judged from its first byte.
    enum Kind { case object, array, string, number, literal }

    /// The text; the caller keeps it alive while the scanner is used (`scan(_:source:_:)` does for an array, a
    /// `MappedFile` for a memory-mapped file).
    let bytes: UnsafeBufferPointer<UInt8>
    /// The file name used in messages.
    let source: String
    private(set) var offset = 0
    private var depth = 0
    private static let maximumDepth = 512

    /// Runs `body` with a scanner over `bytes`; the scanner must not outlive the call.
    static func scan<Result>(_ bytes: [UInt8], source: String, _ body: (inout JSONScanner) throws -> Result) throws -> Result {
        try bytes.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer: buffer, source: source)
            return try body(&scanner)
        }
    }

    init(buffer: UnsafeBufferPointer<UInt8>, source: String) {
        self.bytes = buffer
        self.source = source
        // A UTF-8 byte order mark is allowed before the text (Python's json refuses it in a str, accepts it in bytes).
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { offset = 3 }
    }

    // MARK: Errors

    /// 1-based line and column of byte `offset` (columns count characters, not bytes).
    func location(of offset: Int) -> (line: Int, column: Int) {
        let end = min(offset, bytes.count)
        var line = 1, lineStart = 0
        for i in 0..<end where bytes[i] == UInt8(ascii: "\n") {
            line += 1
            lineStart = i + 1
        }
        var column = 1
        for i in lineStart..<end where bytes[i] & 0xC0 != 0x80 { column += 1 }
        return (line, column)
    }

    func malformed(_ message: String, at offset: Int) -> COCOError {
        let (line, column) = location(of: offset)
        return COCOError("\(source):\(line):\(column): malformed JSON: \(message)")
    }

    /// "unexpected end of file" or "unexpected character 'x'" at `offset`, after `context`.
    func unexpected(at offset: Int, _ context: String) -> COCOError {
        guard offset < bytes.count else { return malformed("unexpected end of file \(context)", at: offset) }
        let byte = bytes[offset]
        let shown = (0x21...0x7E).contains(byte) ? "character '\(Character(Unicode.Scalar(byte)))'"
                                                 : "byte 0x" + String(byte, radix: 16, uppercase: true)
        return malformed("unexpected \(shown) \(context)", at: offset)
    }

    // MARK: Structure

    mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return
            }
        }
    }

    /// The kind of the next value (after whitespace), nil at the end of the text or before a byte that starts no value.
    mutating func peekKind() -> Kind? {
        skipWhitespace()
        guard offset < bytes.count else { return nil }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"): return .literal
        default: return nil
        }
    }

    /// Checks that only whitespace follows the top-level value.
    mutating func finish() throws {
        skipWhitespace()
        if offset < bytes.count { throw unexpected(at: offset, "after the end of the top-level value") }
    }

    /// Walks an object (the next value must be one): `member` is called with each key and must read or skip the value.
    mutating func object(_ member: (inout JSONScanner, String) throws -> Void) throws {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "{") else { throw unexpected(at: offset, "where an object was expected") }
        try enter()
        offset += 1
        skipWhitespace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            depth -= 1
            return
        }
        while true {
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
                throw unexpected(at: offset, "where an object key (a string) was expected")
            }
            let key = try string()
            skipWhitespace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw unexpected(at: offset, "after an object key (expected ':')") }
            offset += 1
            try member(&self, key)
            skipWhitespace()
            guard offset < bytes.count else { throw unexpected(at: offset, "inside an object (expected ',' or '}')") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            if bytes[offset] == UInt8(ascii: "}") { offset += 1; depth -= 1; return }
            throw unexpected(at: offset, "after an object member (expected ',' or '}')")
        }
    }

    /// Walks an array (the next value must be one): `element` is called with each index and must read or skip it.
    mutating func array(_ element: (inout JSONScanner, Int) throws -> Void) throws {
        skipWhitespace()
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "[") else { throw unexpected(at: offset, "where an array was expected") }
        try enter()
        offset += 1
        skipWhitespace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            depth -= 1
            return
        }
        var index = 0
        while true {
            skipWhitespace()
            guard peekKind() != nil else { throw unexpected(at: offset, "where an array element was expected") }
            try element(&self, index)
            index += 1
            skipWhitespace()
            guard offset < bytes.count else { throw unexpected(at: offset, "inside an array (expected ',' or ']')") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            if bytes[offset] == UInt8(ascii: "]") { offset += 1; depth -= 1; return }
            throw unexpected(at: offset, "after an array element (expected ',' or ']')")
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > JSONScanner.maximumDepth { throw malformed("nested deeper than \(JSONScanner.maximumDepth) levels", at: offset) }
    }

    // MARK: Values

    /// Reads the next value into a tree.
    mutating func value() throws -> JSONNode {
        switch peekKind() {
        case .object:
            var members: [(key: String, value: JSONNode)] = []
            try object { scanner, key in members.append((key, try scanner.value())) }
            return .object(members)
        case .array:
            var elements: [JSONNode] = []
            try array { scanner, _ in elements.append(try scanner.value()) }
            return .array(elements)
        case .string: return .string(try string())
        case .number: return .number(try number())
        case .literal: return try literal()
        case nil: throw unexpected(at: offset, "where a value was expected")
        }
    }

    /// Checks the next value's syntax and moves past it without keeping it.
    mutating func skipValue() throws {
        switch peekKind() {
        case .object: try object { scanner, _ in try scanner.skipValue() }
        case .array: try array { scanner, _ in try scanner.skipValue() }
        case .string: try skipString()
        case .number: offset = try numberEnd().end
        case .literal: _ = try literal()
        case nil: throw unexpected(at: offset, "where a value was expected")
        }
    }

    private mutating func literal() throws -> JSONNode {
        for (text, node) in [("true", JSONNode.bool(true)), ("false", .bool(false)), ("null", .null)] {
            let utf8 = Array(text.utf8)
            if offset + utf8.count <= bytes.count, bytes[offset..<offset + utf8.count].elementsEqual(utf8) {
                let end = offset + utf8.count
                if end < bytes.count, Self.isIdentifierByte(bytes[end]) { break }
                offset = end
                return node
            }
        }
        throw unexpected(at: offset, "where a value was expected")
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
    }

    // MARK: Strings

    /// Reads a string (the next byte is its opening quote).
    mutating func string() throws -> String {
        offset += 1
        let start = offset
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                defer { offset += 1 }
                return String(decoding: bytes[start..<offset], as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw malformed("control character in a string (must be escaped)", at: offset) }
            offset += 1
        }
        var utf8 = Array(bytes[start..<offset])
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                offset += 1
                return String(decoding: utf8, as: UTF8.self)
            }
            if byte < 0x20 { throw malformed("control character in a string (must be escaped)", at: offset) }
            if byte != UInt8(ascii: "\\") {
                utf8.append(byte)
                offset += 1
                continue
            }
            let escapeStart = offset
            offset += 1
            guard offset < bytes.count else { break }
            switch bytes[offset] {
            case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hexQuad(at: offset + 1, escapeStart: escapeStart)
                offset += 4
                if (0xD800...0xDBFF).contains(code), offset + 6 < bytes.count,
                   bytes[offset + 1] == UInt8(ascii: "\\"), bytes[offset + 2] == UInt8(ascii: "u") {
                    let low = try hexQuad(at: offset + 3, escapeStart: offset + 1)
                    if (0xDC00...0xDFFF).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        offset += 6
                    }
                }
                // A lone surrogate has no UTF-8 form; it becomes U+FFFD (Python keeps it as is).
                utf8.append(contentsOf: Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
            default:
                throw malformed("invalid escape sequence in a string", at: escapeStart)
            }
            offset += 1
        }
        throw malformed("unexpected end of file inside a string", at: offset)
    }

    private func hexQuad(at position: Int, escapeStart: Int) throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw malformed("invalid \\u escape in a string", at: escapeStart) }
        var code: UInt32 = 0
        for byte in bytes[position..<position + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw malformed("invalid \\u escape in a string", at: escapeStart)
            }
            code = code << 4 | UInt32(digit)
        }
        return code
    }

    private mutating func skipString() throws {
        offset += 1
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") { offset += 1; return }
            if byte < 0x20 { throw malformed("control character in a string (must be escaped)", at: offset) }
            if byte == UInt8(ascii: "\\") {
                guard offset + 1 < bytes.count else { break }
                switch bytes[offset + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    offset += 2
                case UInt8(ascii: "u"):
                    _ = try hexQuad(at: offset + 2, escapeStart: offset)
                    offset += 6
                default:
                    throw malformed("invalid escape sequence in a string", at: offset)
                }
                continue
            }
            offset += 1
        }
        throw malformed("unexpected end of file inside a string", at: offset)
    }

    // MARK: Numbers

    private static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    /// Checks the grammar of the number at `offset` and returns the offset just past it (without moving).
    private func numberEnd() throws -> (end: Int, fractionOrExponent: Bool) {
        var i = offset
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, Self.isDigit(bytes[i]) else { throw malformed("invalid number (a digit must follow '-')", at: offset) }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, Self.isDigit(bytes[i]) { throw malformed("invalid number (leading zero)", at: offset) }
        } else {
            while i < bytes.count, Self.isDigit(bytes[i]) { i += 1 }
        }
        var fractionOrExponent = false
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            fractionOrExponent = true
            i += 1
            guard i < bytes.count, Self.isDigit(bytes[i]) else { throw malformed("invalid number (a digit must follow '.')", at: offset) }
            while i < bytes.count, Self.isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            fractionOrExponent = true
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, Self.isDigit(bytes[i]) else { throw malformed("invalid number (a digit must follow the exponent mark)", at: offset) }
            while i < bytes.count, Self.isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, Self.isIdentifierByte(bytes[i]) || bytes[i] == UInt8(ascii: ".") {
            throw unexpected(at: i, "after a number")
        }
        return (i, fractionOrExponent)
    }

    /// Exact powers of ten as doubles (10^0 ... 10^22 are all representable).
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// Reads a number. Its value is the correctly rounded nearest double: small decimals take the exact fast path
    /// (a mantissa below 2^53 times or divided by an exact power of ten up to 10^22), everything else Swift's own
    /// correctly rounded decimal conversion.
    mutating func number() throws -> JSONNumber {
        let start = offset
        let (end, fractionOrExponent) = try numberEnd()
        offset = end
        var i = start
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var mantissa: UInt64 = 0
        var significant = 0, fractionDigits = 0
        var inFraction = false
        var exponent = 0
        var fast = true
        while i < end {
            let byte = bytes[i]
            if Self.isDigit(byte) {
                if inFraction { fractionDigits += 1 }
                if mantissa > 0 || byte != UInt8(ascii: "0") { significant += 1 }
                if significant > 18 { fast = false; break }
                mantissa = mantissa * 10 + UInt64(byte - UInt8(ascii: "0"))
                i += 1
            } else if byte == UInt8(ascii: ".") {
                inFraction = true
                i += 1
            } else {  // exponent
                i += 1
                var exponentNegative = false
                if bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                    exponentNegative = bytes[i] == UInt8(ascii: "-")
                    i += 1
                }
                while i < end {
                    exponent = exponent * 10 + Int(bytes[i] - UInt8(ascii: "0"))
                    if exponent > 100_000 { fast = false; break }
                    i += 1
                }
                if exponentNegative { exponent = -exponent }
                break
            }
        }
        if fast && !fractionOrExponent && significant <= 18 {
            let integer = negative ? -Int(mantissa) : Int(mantissa)
            return JSONNumber(value: Double(integer), integer: integer)
        }
        let scale = exponent - fractionDigits
        var value: Double
        if fast && (mantissa == 0 || (mantissa <= 1 << 53 && abs(scale) <= 22)) {
            value = Double(mantissa)
            if scale < 0 { value /= Self.powersOfTen[-scale] } else if scale > 0 { value *= Self.powersOfTen[scale] }
            if negative { value = -value }
        } else {
            guard let parsed = Double(String(decoding: bytes[start..<end], as: UTF8.self)) else {
                throw malformed("invalid number", at: start)
            }
            value = parsed
        }
        guard value.isFinite else { throw malformed("number out of the range of a double", at: start) }
        let integer = !fractionOrExponent && abs(value) < 9.2e18 ? Int(String(decoding: bytes[start..<end], as: UTF8.self)) : nil
        return JSONNumber(value: value, integer: integer)
    }
}
