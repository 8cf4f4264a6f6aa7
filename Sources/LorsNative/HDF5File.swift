import CHDF5
import CMPI
import Foundation

/// An HDF5 file, serial or parallel (MPI-IO), addressed by absolute object paths such as `/model/fc.weight`.
///
/// All access is serialised by one process-wide lock (HDF5 1.10 is not thread-safe).
///
/// **Parallel mode** (`comm:` given): the file is opened with `H5Pset_fapl_mpio` and
/// `H5Pset_all_coll_metadata_ops`, and dataset reads and writes use a collective transfer plist. Then every
/// method is collective: all ranks of the communicator call it, in the same order, with identical arguments —
/// except the `range:` and values of `write`/`read`, which may differ per rank (an empty range takes part
/// without transferring data).
///
///     let file = try HDF5File(path: "ckpt.h5", mode: .create, comm: world)
///     try file.createDataset("/model/w", shape: [4, 3])
///     try file.write("/model/w", values: mySlice, range: myRange)   // each rank its own flat range
///     try file.setAttribute("step", .int64(100), on: "/meta")
///     try file.close()
public final class HDF5File {
    /// How to open the file.
    public enum Mode: Sendable {
        /// Create, truncating an existing file.
        case create
        /// Open an existing file read-only.
        case readOnly
        /// Open an existing file for reading and writing.
        case readWrite
    }

    /// The file's path as given.
    public let path: String
    /// The open mode.
    public let mode: Mode
    /// The communicator in parallel mode, nil in serial mode.
    public let comm: MPIComm?
    /// True when opened with MPI-IO.
    public var isParallel: Bool { comm != nil }

    var fileID: hid_t = -1
    /// Dataset transfer plist: collective MPI-IO in parallel mode, `H5P_DEFAULT` in serial mode.
    var transferPlist: hid_t = lors_h5p_default()

    /// Creates or opens `path`; pass `comm` for a parallel (collective) file.
    public init(path: String, mode: Mode, comm: MPIComm? = nil) throws {
        self.path = path
        self.mode = mode
        self.comm = comm
        try withHDF5 {
            let context = "'\(path)'"
            let accessPlist = try h5check(H5Pcreate(lors_h5p_file_access()), "H5Pcreate(H5P_FILE_ACCESS)", context: context)
            defer { H5Pclose(accessPlist) }
            if let comm {
                try h5check(H5Pset_fapl_mpio(accessPlist, comm.handle, lors_mpi_info_null()), "H5Pset_fapl_mpio", context: context)
                try h5check(H5Pset_all_coll_metadata_ops(accessPlist, true), "H5Pset_all_coll_metadata_ops", context: context)
                try h5check(H5Pset_coll_metadata_write(accessPlist, true), "H5Pset_coll_metadata_write", context: context)
            }
            switch mode {
            case .create:
                fileID = try h5check(H5Fcreate(path, lors_h5f_acc_trunc(), lors_h5p_default(), accessPlist), "H5Fcreate", context: context)
            case .readOnly:
                fileID = try h5check(H5Fopen(path, lors_h5f_acc_rdonly(), accessPlist), "H5Fopen", context: context)
            case .readWrite:
                fileID = try h5check(H5Fopen(path, lors_h5f_acc_rdwr(), accessPlist), "H5Fopen", context: context)
            }
            if comm != nil {
                do {
                    transferPlist = try h5check(H5Pcreate(lors_h5p_dataset_xfer()), "H5Pcreate(H5P_DATASET_XFER)", context: context)
                    try h5check(H5Pset_dxpl_mpio(transferPlist, H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", context: context)
                } catch {
                    H5Fclose(fileID)
                    fileID = -1
                    throw error
                }
            }
        }
    }

    deinit {
        // Best effort only: in parallel mode call close() explicitly on every rank (H5Fclose is collective).
        if fileID >= 0 { try? close() }
    }

    /// True until `close()`.
    public var isOpen: Bool { fileID >= 0 }

    /// Flushes and closes the file (collective in parallel mode). Calling it twice is harmless.
    public func close() throws {
        try withHDF5 {
            guard fileID >= 0 else { return }
            if transferPlist != lors_h5p_default() {
                H5Pclose(transferPlist)
                transferPlist = lors_h5p_default()
            }
            let id = fileID
            fileID = -1
            try h5check(H5Fclose(id), "H5Fclose", context: "'\(path)'")
        }
    }

    /// `H5Fflush` of the whole file (collective in parallel mode).
    public func flush() throws {
        try withHDF5 {
            let id = try openFileID()
            try h5check(H5Fflush(id, H5F_SCOPE_GLOBAL), "H5Fflush", context: "'\(path)'")
        }
    }

    func openFileID() throws -> hid_t {
        guard fileID >= 0 else { throw NativeError.usage("HDF5File", "file is closed", context: "'\(path)'") }
        return fileID
    }

    func describe(_ objectPath: String) -> String { "'\(objectPath)' in '\(path)'" }

    // MARK: - Groups and links

    /// Creates the group at `groupPath` and any missing parents; an existing group is left as it is.
    public func createGroup(_ groupPath: String) throws {
        try withHDF5 {
            let id = try openFileID()
            if try linkExists(groupPath) { return }
            let linkPlist = try intermediateGroupsPlist(groupPath)
            defer { H5Pclose(linkPlist) }
            let group = try h5check(H5Gcreate2(id, groupPath, linkPlist, lors_h5p_default(), lors_h5p_default()),
                                    "H5Gcreate2", context: describe(groupPath))
            H5Gclose(group)
        }
    }

    /// True if an object exists at `objectPath` (every parent is checked, so missing parents give false).
    public func exists(_ objectPath: String) throws -> Bool {
        try withHDF5 { try linkExists(objectPath) }
    }

    func linkExists(_ objectPath: String) throws -> Bool {
        let id = try openFileID()
        if objectPath == "/" { return true }
        var prefix = ""
        for component in objectPath.split(separator: "/") {
            prefix += "/" + component
            let exists = try h5check(H5Lexists(id, prefix, lors_h5p_default()), "H5Lexists", context: describe(prefix))
            if exists == 0 { return false }
        }
        return true
    }

    func intermediateGroupsPlist(_ objectPath: String) throws -> hid_t {
        let plist = try h5check(H5Pcreate(lors_h5p_link_create()), "H5Pcreate(H5P_LINK_CREATE)", context: describe(objectPath))
        do {
            try h5check(H5Pset_create_intermediate_group(plist, 1), "H5Pset_create_intermediate_group", context: describe(objectPath))
        } catch {
            H5Pclose(plist)
            throw error
        }
        return plist
    }

    /// The names of the direct children (groups and datasets) of the group at `groupPath`, sorted by name.
    public func children(of groupPath: String = "/") throws -> [String] {
        try withHDF5 {
            let id = try openFileID()
            let group = try h5check(H5Gopen2(id, groupPath, lors_h5p_default()), "H5Gopen2", context: describe(groupPath))
            defer { H5Gclose(group) }
            var info = H5G_info_t()
            try h5check(H5Gget_info(group, &info), "H5Gget_info", context: describe(groupPath))
            var names: [String] = []
            names.reserveCapacity(Int(info.nlinks))
            for index in 0..<info.nlinks {
                let length = try h5check(H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, lors_h5p_default()),
                                         "H5Lget_name_by_idx", context: describe(groupPath))
                var buffer = [CChar](repeating: 0, count: Int(length) + 1)
                try h5check(H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, lors_h5p_default()),
                            "H5Lget_name_by_idx", context: describe(groupPath))
                names.append(String(cString: buffer))
            }
            return names
        }
    }

    /// Whether the object at `objectPath` is a group or a dataset.
    public enum ObjectKind: Sendable { case group, dataset, other }

    /// The kind of object at `objectPath`.
    public func kind(of objectPath: String) throws -> ObjectKind {
        try withHDF5 {
            let id = try openFileID()
            let object = try h5check(H5Oopen(id, objectPath, lors_h5p_default()), "H5Oopen", context: describe(objectPath))
            defer { H5Oclose(object) }
            let type = H5Iget_type(object)
            switch type {
            case H5I_GROUP, H5I_FILE: return .group
            case H5I_DATASET: return .dataset
            default: return .other
            }
        }
    }
}
