import CHDF5

/// The value of an HDF5 attribute as LORS writes them.
public enum HDF5AttributeValue: Equatable, Sendable {
    /// A variable-length UTF-8 string (h5py reads it as `str`).
    case string(String)
    /// A scalar 64-bit integer.
    case int64(Int64)
    /// A scalar double.
    case double(Double)
    /// A 1-D array of 64-bit integers (possibly empty).
    case int64Array([Int64])
}

/// Attributes on the file root, groups and datasets, addressed by object path (`"/"`, `"/meta"`, ...).
extension HDF5File {
    /// Writes attribute `name` on the object at `objectPath`, replacing an existing one. Collective in
    /// parallel mode (every rank passes the same value).
    public func setAttribute(_ name: String, _ value: HDF5AttributeValue, on objectPath: String = "/") throws {
        try withHDF5 {
            let context = "attribute '\(name)' of \(describe(objectPath))"
            let object = try openObject(objectPath)
            defer { H5Oclose(object) }
            if try h5check(H5Aexists(object, name), "H5Aexists", context: context) > 0 {
                try h5check(H5Adelete(object, name), "H5Adelete", context: context)
            }
            switch value {
            case .string(let string):
                let type = try variableStringType(context)
                defer { H5Tclose(type) }
                let space = try h5check(H5Screate(H5S_SCALAR), "H5Screate", context: context)
                defer { H5Sclose(space) }
                let attribute = try h5check(H5Acreate2(object, name, type, space, lors_h5p_default(), lors_h5p_default()),
                                            "H5Acreate2", context: context)
                defer { H5Aclose(attribute) }
                try string.withCString { cString in
                    var pointer: UnsafePointer<CChar>? = cString
                    try h5check(H5Awrite(attribute, type, &pointer), "H5Awrite", context: context)
                }
            case .int64(var scalar):
                try writeScalar(object, name, fileType: lors_h5t_std_i64le(), memoryType: lors_h5t_native_int64(), &scalar, context)
            case .double(var scalar):
                try writeScalar(object, name, fileType: lors_h5t_ieee_f64le(), memoryType: lors_h5t_native_double(), &scalar, context)
            case .int64Array(let array):
                let space: hid_t
                if array.isEmpty {
                    space = try h5check(H5Screate(H5S_NULL), "H5Screate(H5S_NULL)", context: context)
                } else {
                    var dims = [hsize_t(array.count)]
                    space = try h5check(H5Screate_simple(1, &dims, nil), "H5Screate_simple", context: context)
                }
                defer { H5Sclose(space) }
                let attribute = try h5check(H5Acreate2(object, name, lors_h5t_std_i64le(), space, lors_h5p_default(), lors_h5p_default()),
                                            "H5Acreate2", context: context)
                defer { H5Aclose(attribute) }
                if !array.isEmpty {
                    try array.withUnsafeBufferPointer { buffer in
                        _ = try h5check(H5Awrite(attribute, lors_h5t_native_int64(), buffer.baseAddress), "H5Awrite", context: context)
                    }
                }
            }
        }
    }

    /// Reads attribute `name` of the object at `objectPath`. Strings (fixed or variable length), integers
    /// (scalar → `.int64`, 1-D → `.int64Array`) and floating-point scalars are understood.
    public func attribute(_ name: String, of objectPath: String = "/") throws -> HDF5AttributeValue {
        try withHDF5 {
            let context = "attribute '\(name)' of \(describe(objectPath))"
            let object = try openObject(objectPath)
            defer { H5Oclose(object) }
            let attribute = try h5check(H5Aopen(object, name, lors_h5p_default()), "H5Aopen", context: context)
            defer { H5Aclose(attribute) }
            let type = try h5check(H5Aget_type(attribute), "H5Aget_type", context: context)
            defer { H5Tclose(type) }
            let space = try h5check(H5Aget_space(attribute), "H5Aget_space", context: context)
            defer { H5Sclose(space) }
            let typeClass = H5Tget_class(type)
            let spaceClass = H5Sget_simple_extent_type(space)
            let elementCount = try h5check(H5Sget_simple_extent_npoints(space), "H5Sget_simple_extent_npoints", context: context)

            switch typeClass {
            case H5T_STRING:
                guard spaceClass == H5S_SCALAR else {
                    throw NativeError.usage("HDF5File.attribute", "only scalar string attributes are supported", context: context)
                }
                if try h5check(H5Tis_variable_str(type), "H5Tis_variable_str", context: context) > 0 {
                    let memoryType = try variableStringType(context)
                    defer { H5Tclose(memoryType) }
                    var pointer: UnsafeMutablePointer<CChar>? = nil
                    try h5check(H5Aread(attribute, memoryType, &pointer), "H5Aread", context: context)
                    defer { if let pointer { H5free_memory(pointer) } }
                    return .string(pointer.map { String(cString: $0) } ?? "")
                } else {
                    let size = H5Tget_size(type)
                    let memoryType = try h5check(H5Tcopy(lors_h5t_c_s1()), "H5Tcopy", context: context)
                    defer { H5Tclose(memoryType) }
                    try h5check(H5Tset_size(memoryType, size), "H5Tset_size", context: context)
                    var bytes = [UInt8](repeating: 0, count: size + 1)
                    try h5check(H5Aread(attribute, memoryType, &bytes), "H5Aread", context: context)
                    let end = bytes.firstIndex(of: 0) ?? size
                    return .string(String(decoding: bytes[..<end], as: UTF8.self))
                }
            case H5T_INTEGER:
                if spaceClass == H5S_SCALAR {
                    var value: Int64 = 0
                    try h5check(H5Aread(attribute, lors_h5t_native_int64(), &value), "H5Aread", context: context)
                    return .int64(value)
                }
                if spaceClass == H5S_NULL { return .int64Array([]) }
                var values = [Int64](repeating: 0, count: Int(elementCount))
                try values.withUnsafeMutableBufferPointer { buffer in
                    _ = try h5check(H5Aread(attribute, lors_h5t_native_int64(), buffer.baseAddress), "H5Aread", context: context)
                }
                return .int64Array(values)
            case H5T_FLOAT:
                guard spaceClass == H5S_SCALAR else {
                    throw NativeError.usage("HDF5File.attribute", "only scalar floating-point attributes are supported", context: context)
                }
                var value: Double = 0
                try h5check(H5Aread(attribute, lors_h5t_native_double(), &value), "H5Aread", context: context)
                return .double(value)
            default:
                throw NativeError.usage("HDF5File.attribute", "unsupported attribute type class \(typeClass.rawValue)", context: context)
            }
        }
    }

    /// Whether attribute `name` exists on the object at `objectPath`.
    public func hasAttribute(_ name: String, on objectPath: String = "/") throws -> Bool {
        try withHDF5 {
            let object = try openObject(objectPath)
            defer { H5Oclose(object) }
            return try h5check(H5Aexists(object, name), "H5Aexists", context: "attribute '\(name)' of \(describe(objectPath))") > 0
        }
    }

    /// The attribute names of the object at `objectPath`, sorted by name.
    public func attributeNames(of objectPath: String = "/") throws -> [String] {
        try withHDF5 {
            let object = try openObject(objectPath)
            defer { H5Oclose(object) }
            var info = H5O_info_t()
            try h5check(H5Oget_info2(object, &info, UInt32(H5O_INFO_NUM_ATTRS)), "H5Oget_info2", context: describe(objectPath))
            var names: [String] = []
            for index in 0..<info.num_attrs {
                let length = try h5check(H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, lors_h5p_default()),
                                         "H5Aget_name_by_idx", context: describe(objectPath))
                var buffer = [CChar](repeating: 0, count: Int(length) + 1)
                try h5check(H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, lors_h5p_default()),
                            "H5Aget_name_by_idx", context: describe(objectPath))
                names.append(String(cString: buffer))
            }
            return names
        }
    }

    /// A string attribute, or an error naming the attribute if it has another type.
    public func stringAttribute(_ name: String, of objectPath: String = "/") throws -> String {
        guard case .string(let value) = try attribute(name, of: objectPath) else { throw typeMismatch(name, objectPath, "a string") }
        return value
    }

    /// An Int64 scalar attribute, or an error naming the attribute if it has another type.
    public func int64Attribute(_ name: String, of objectPath: String = "/") throws -> Int64 {
        guard case .int64(let value) = try attribute(name, of: objectPath) else { throw typeMismatch(name, objectPath, "an integer") }
        return value
    }

    /// A Double scalar attribute, or an error naming the attribute if it has another type.
    public func doubleAttribute(_ name: String, of objectPath: String = "/") throws -> Double {
        guard case .double(let value) = try attribute(name, of: objectPath) else { throw typeMismatch(name, objectPath, "a double") }
        return value
    }

    /// An Int64 array attribute, or an error naming the attribute if it has another type.
    public func int64ArrayAttribute(_ name: String, of objectPath: String = "/") throws -> [Int64] {
        guard case .int64Array(let value) = try attribute(name, of: objectPath) else { throw typeMismatch(name, objectPath, "an integer array") }
        return value
    }

    // MARK: - Internals

    private func typeMismatch(_ name: String, _ objectPath: String, _ expected: String) -> NativeError {
        NativeError.usage("HDF5File.attribute", "attribute is not \(expected)", context: "attribute '\(name)' of \(describe(objectPath))")
    }

    func openObject(_ objectPath: String) throws -> hid_t {
        let id = try openFileID()
        return try h5check(H5Oopen(id, objectPath, lors_h5p_default()), "H5Oopen", context: describe(objectPath))
    }

    private func variableStringType(_ context: String) throws -> hid_t {
        let type = try h5check(H5Tcopy(lors_h5t_c_s1()), "H5Tcopy", context: context)
        do {
            try h5check(H5Tset_size(type, lors_h5t_variable()), "H5Tset_size", context: context)
            try h5check(H5Tset_cset(type, H5T_CSET_UTF8), "H5Tset_cset", context: context)
        } catch {
            H5Tclose(type)
            throw error
        }
        return type
    }

    private func writeScalar<T: BitwiseCopyable>(_ object: hid_t, _ name: String, fileType: hid_t, memoryType: hid_t,
                                _ value: inout T, _ context: String) throws {
        let space = try h5check(H5Screate(H5S_SCALAR), "H5Screate", context: context)
        defer { H5Sclose(space) }
        let attribute = try h5check(H5Acreate2(object, name, fileType, space, lors_h5p_default(), lors_h5p_default()),
                                    "H5Acreate2", context: context)
        defer { H5Aclose(attribute) }
        try h5check(H5Awrite(attribute, memoryType, &value), "H5Awrite", context: context)
    }
}
