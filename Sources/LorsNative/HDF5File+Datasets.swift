import CHDF5

/// Float32 datasets at their full logical shape, written and read whole or as a contiguous range of flat
/// (row-major) elements.
extension HDF5File {
    /// Creates a float32 (IEEE little-endian) dataset of `shape` at `datasetPath`, creating missing parent
    /// groups. `shape == []` is a scalar. Collective in parallel mode.
    public func createDataset(_ datasetPath: String, shape: [Int]) throws {
        try createOpenDataset(datasetPath, shape: shape).close()
    }

    /// Creates a float32 dataset like `createDataset(_:shape:)` and keeps it open (collective in parallel mode).
    /// The handle's transfers can then be independent: only the ranks that hold data call them.
    public func createOpenDataset(_ datasetPath: String, shape: [Int]) throws -> HDF5Dataset {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw NativeError.usage("HDF5File.createDataset", "negative extent in shape \(shape)", context: describe(datasetPath))
        }
        return try withHDF5 {
            let id = try openFileID()
            let space = try createDataspace(shape: shape, context: datasetPath)
            defer { H5Sclose(space) }
            let linkPlist = try intermediateGroupsPlist(datasetPath)
            defer { H5Pclose(linkPlist) }
            let createPlist = try datasetCreatePlist(datasetPath)
            defer { H5Pclose(createPlist) }
            let dataset = try h5check(H5Dcreate2(id, datasetPath, lors_h5t_ieee_f32le(), space, linkPlist,
                                                 createPlist, lors_h5p_default()),
                                      "H5Dcreate2", context: describe(datasetPath))
            return HDF5Dataset(file: self, id: dataset, path: datasetPath, shape: shape)
        }
    }

    /// Opens an existing dataset and keeps it open (collective in parallel mode); see `HDF5Dataset`.
    public func openDatasetHandle(_ datasetPath: String) throws -> HDF5Dataset {
        try withHDF5 {
            let dataset = try openDataset(datasetPath)
            do {
                return HDF5Dataset(file: self, id: dataset, path: datasetPath, shape: try datasetShape(dataset, datasetPath))
            } catch {
                H5Dclose(dataset)
                throw error
            }
        }
    }

    /// Contiguous storage, and no fill values written at allocation: every element is written by the caller
    /// (in parallel mode the library would otherwise write the fill value over the whole dataset first).
    func datasetCreatePlist(_ datasetPath: String) throws -> hid_t {
        let plist = try h5check(H5Pcreate(lors_h5p_dataset_create()), "H5Pcreate(H5P_DATASET_CREATE)", context: describe(datasetPath))
        do {
            try h5check(H5Pset_fill_time(plist, H5D_FILL_TIME_NEVER), "H5Pset_fill_time", context: describe(datasetPath))
        } catch {
            H5Pclose(plist)
            throw error
        }
        return plist
    }

    /// Creates a float32 dataset of `shape` and writes all of `values` (count = product of `shape`).
    public func createDataset(_ datasetPath: String, shape: [Int], values: [Float]) throws {
        try createDataset(datasetPath, shape: shape)
        try write(datasetPath, values: values)
    }

    /// The shape of the dataset at `datasetPath` (`[]` for a scalar).
    public func shape(of datasetPath: String) throws -> [Int] {
        try withHDF5 {
            let dataset = try openDataset(datasetPath)
            defer { H5Dclose(dataset) }
            return try datasetShape(dataset, datasetPath)
        }
    }

    /// Writes `values` into the dataset: the whole dataset when `range` is nil, else the flat elements
    /// `range` (row-major order), whose count must equal `values.count`. Collective in parallel mode, where
    /// each rank passes its own range (possibly empty).
    public func write(_ datasetPath: String, values: UnsafeBufferPointer<Float>, range: Range<Int>? = nil) throws {
        try withHDF5 {
            try transfer(datasetPath, count: values.count, range: range, isWrite: true) { memoryType, memorySpace, fileSpace, dataset in
                var dummy: Float = 0
                return withUnsafePointer(to: &dummy) { dummyPointer in
                    H5Dwrite(dataset, memoryType, memorySpace, fileSpace, transferPlist,
                             UnsafeRawPointer(values.baseAddress ?? dummyPointer))
                }
            }
        }
    }

    /// Writes an array; see `write(_:values:range:)` for the buffer version.
    public func write(_ datasetPath: String, values: [Float], range: Range<Int>? = nil) throws {
        try values.withUnsafeBufferPointer { try write(datasetPath, values: $0, range: range) }
    }

    /// Reads the whole dataset (`range == nil`) or the flat elements `range` into `buffer`, whose count must
    /// match. Collective in parallel mode.
    public func read(_ datasetPath: String, into buffer: UnsafeMutableBufferPointer<Float>, range: Range<Int>? = nil) throws {
        try withHDF5 {
            try transfer(datasetPath, count: buffer.count, range: range, isWrite: false) { memoryType, memorySpace, fileSpace, dataset in
                var dummy: Float = 0
                return withUnsafeMutablePointer(to: &dummy) { dummyPointer in
                    H5Dread(dataset, memoryType, memorySpace, fileSpace, transferPlist,
                            UnsafeMutableRawPointer(buffer.baseAddress ?? dummyPointer))
                }
            }
        }
    }

    /// Reads the whole dataset, or the flat elements `range`, as a new array.
    public func readFloats(_ datasetPath: String, range: Range<Int>? = nil) throws -> [Float] {
        try withHDF5 {
            let count: Int
            if let range {
                count = range.count
            } else {
                count = try shape(of: datasetPath).reduce(1, *)
            }
            var result = [Float](repeating: 0, count: count)
            try result.withUnsafeMutableBufferPointer { try read(datasetPath, into: $0, range: range) }
            return result
        }
    }

    // MARK: - Internals

    func openDataset(_ datasetPath: String) throws -> hid_t {
        let id = try openFileID()
        return try h5check(H5Dopen2(id, datasetPath, lors_h5p_default()), "H5Dopen2", context: describe(datasetPath))
    }

    func datasetShape(_ dataset: hid_t, _ datasetPath: String) throws -> [Int] {
        let space = try h5check(H5Dget_space(dataset), "H5Dget_space", context: describe(datasetPath))
        defer { H5Sclose(space) }
        return try dataspaceShape(space, datasetPath)
    }

    func dataspaceShape(_ space: hid_t, _ objectPath: String) throws -> [Int] {
        let rank = try h5check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims", context: describe(objectPath))
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        try h5check(H5Sget_simple_extent_dims(space, &dims, nil), "H5Sget_simple_extent_dims", context: describe(objectPath))
        return dims.map { Int($0) }
    }

    func createDataspace(shape: [Int], context objectPath: String) throws -> hid_t {
        if shape.isEmpty {
            return try h5check(H5Screate(H5S_SCALAR), "H5Screate(H5S_SCALAR)", context: describe(objectPath))
        }
        let dims = shape.map { hsize_t($0) }
        return try h5check(H5Screate_simple(Int32(dims.count), dims, nil), "H5Screate_simple", context: describe(objectPath))
    }

    /// Opens the dataset, builds the memory space (1-D, `count` elements) and the file-space selection for
    /// `range`, and runs `io`, checking its result.
    private func transfer(_ datasetPath: String, count: Int, range: Range<Int>?, isWrite: Bool,
                          _ io: (_ memoryType: hid_t, _ memorySpace: hid_t, _ fileSpace: hid_t, _ dataset: hid_t) -> herr_t) throws {
        let dataset = try openDataset(datasetPath)
        defer { H5Dclose(dataset) }
        try transfer(dataset: dataset, datasetPath, shape: try datasetShape(dataset, datasetPath), count: count, range: range,
                     isWrite: isWrite, io)
    }

    func transfer(dataset: hid_t, _ datasetPath: String, shape: [Int], count: Int, range: Range<Int>?, isWrite: Bool,
                  _ io: (_ memoryType: hid_t, _ memorySpace: hid_t, _ fileSpace: hid_t, _ dataset: hid_t) -> herr_t) throws {
        let call = isWrite ? "H5Dwrite" : "H5Dread"
        let total = shape.reduce(1, *)
        let selected = range ?? 0..<total
        guard selected.lowerBound >= 0, selected.upperBound <= total else {
            throw NativeError.usage(call, "flat range \(selected) outside 0..<\(total) for shape \(shape)", context: describe(datasetPath))
        }
        guard count == selected.count else {
            throw NativeError.usage(call, "buffer has \(count) elements but the selection \(selected) of shape \(shape) has \(selected.count)",
                                    context: describe(datasetPath))
        }
        // A dataset without elements has no storage (a collective transfer would fail on its undefined
        // address); every rank sees the same shape, so all skip together.
        if total == 0 { return }
        let fileSpace = try h5check(H5Dget_space(dataset), "H5Dget_space", context: describe(datasetPath))
        defer { H5Sclose(fileSpace) }
        var memoryDims = [hsize_t(Swift.max(count, 1))]
        let memorySpace = try h5check(H5Screate_simple(1, &memoryDims, nil), "H5Screate_simple", context: describe(datasetPath))
        defer { H5Sclose(memorySpace) }

        if selected.isEmpty {
            try h5check(H5Sselect_none(fileSpace), "H5Sselect_none", context: describe(datasetPath))
            try h5check(H5Sselect_none(memorySpace), "H5Sselect_none", context: describe(datasetPath))
        } else if selected.count == total {
            try h5check(H5Sselect_all(fileSpace), "H5Sselect_all", context: describe(datasetPath))
        } else {
            // shape is non-empty here: a scalar has total 1, so any non-empty range selects everything.
            var first = true
            for box in hyperslabBoxes(forFlatRange: selected, shape: shape) {
                let start = box.start.map { hsize_t($0) }
                let extent = box.count.map { hsize_t($0) }
                try h5check(H5Sselect_hyperslab(fileSpace, first ? H5S_SELECT_SET : H5S_SELECT_OR, start, nil, extent, nil),
                            "H5Sselect_hyperslab", context: describe(datasetPath))
                first = false
            }
        }
        try h5check(io(lors_h5t_native_float(), memorySpace, fileSpace, dataset), call, context: describe(datasetPath))
    }
}

/// A dataset kept open between transfers (`HDF5File.createOpenDataset`, `openDatasetHandle`).
///
/// In parallel mode opening and `close()` are collective, but `write(from:count:range:)` and
/// `read(into:count:range:)` are *independent* MPI-IO transfers: only the ranks that move data call them, each
/// with its own range. Large whole-dataset pieces then go to the file as one plain write per rank, without the
/// two-phase exchange of a collective transfer in which all but one rank select nothing.
public final class HDF5Dataset {
    unowned let file: HDF5File
    var id: hid_t
    /// The dataset's path in the file.
    public let path: String
    /// Its shape.
    public let shape: [Int]
    /// Element count.
    public var count: Int { shape.reduce(1, *) }

    init(file: HDF5File, id: hid_t, path: String, shape: [Int]) {
        self.file = file
        self.id = id
        self.path = path
        self.shape = shape
    }

    deinit { if id >= 0 { try? close() } }

    /// Writes `count` floats at `source` into the flat elements `range` (nil: the whole dataset). Independent.
    public func write(from source: UnsafePointer<Float>, count: Int, range: Range<Int>? = nil) throws {
        try withHDF5 {
            guard id >= 0 else { throw NativeError.usage("HDF5Dataset.write", "dataset is closed", context: file.describe(path)) }
            try file.transfer(dataset: id, path, shape: shape, count: count, range: range, isWrite: true) { memoryType, memorySpace, fileSpace, dataset in
                H5Dwrite(dataset, memoryType, memorySpace, fileSpace, lors_h5p_default(), UnsafeRawPointer(source))
            }
        }
    }

    /// Reads the flat elements `range` (nil: the whole dataset) into `count` floats at `destination`. Independent.
    public func read(into destination: UnsafeMutablePointer<Float>, count: Int, range: Range<Int>? = nil) throws {
        try withHDF5 {
            guard id >= 0 else { throw NativeError.usage("HDF5Dataset.read", "dataset is closed", context: file.describe(path)) }
            try file.transfer(dataset: id, path, shape: shape, count: count, range: range, isWrite: false) { memoryType, memorySpace, fileSpace, dataset in
                H5Dread(dataset, memoryType, memorySpace, fileSpace, lors_h5p_default(), UnsafeMutableRawPointer(destination))
            }
        }
    }

    /// The integer attribute `name` of this dataset (read as int64), nil if the dataset has none. Saves opening the
    /// dataset again by path (collective in parallel mode, like every metadata read).
    public func int64Attribute(_ name: String) throws -> Int64? {
        try withHDF5 {
            let context = "attribute '\(name)' of \(file.describe(path))"
            guard id >= 0 else { throw NativeError.usage("HDF5Dataset.int64Attribute", "dataset is closed", context: context) }
            guard try h5check(H5Aexists(id, name), "H5Aexists", context: context) > 0 else { return nil }
            let attribute = try h5check(H5Aopen(id, name, lors_h5p_default()), "H5Aopen", context: context)
            defer { H5Aclose(attribute) }
            var value: Int64 = 0
            try h5check(H5Aread(attribute, lors_h5t_native_int64(), &value), "H5Aread", context: context)
            return value
        }
    }

    /// Byte offset of the data in the file (contiguous storage that has been allocated), nil otherwise.
    public var fileOffset: Int? {
        guard let address = try? withHDF5({ id >= 0 ? H5Dget_offset(id) : haddr_t.max }), address != haddr_t.max else { return nil }
        return Int(address)
    }

    /// Closes the dataset (collective in parallel mode). Calling it twice is harmless.
    public func close() throws {
        try withHDF5 {
            guard id >= 0 else { return }
            let closing = id
            id = -1
            try h5check(H5Dclose(closing), "H5Dclose", context: file.describe(path))
        }
    }
}
