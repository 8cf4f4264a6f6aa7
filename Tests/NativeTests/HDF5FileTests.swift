import Foundation
import LorsNative
import XCTest

final class HDF5FileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("lors-hdf5-tests")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func testSerialDatasetsAttributesAndGroupsRoundTrip() throws {
        try roundTrip(path: path("serial.h5"), comm: nil)
    }

    func testParallelModeWithWorldOfSizeOne() throws {
        let world = try MPIEnvironment.initialize()
        guard world.size == 1 else {
            XCTFail("expects a world of size 1, this process runs in one of size \(world.size) (run it outside mpirun)")
            return
        }
        try roundTrip(path: path("parallel.h5"), comm: world)
        try partialWrites(path: path("parallel-partial.h5"), comm: world)
    }

    func testFlatRangesComposeAFullThreeDimensionalTensor() throws {
        try partialWrites(path: path("partial.h5"), comm: nil)
    }

    private func roundTrip(path: String, comm: MPIComm?) throws {
        let weights = flatIndexValues(24)
        let bias: [Float] = [0.25, -1, 3.5, 1e-7, -0]
        do {
            let file = try HDF5File(path: path, mode: .create, comm: comm)
            XCTAssertEqual(file.isParallel, comm != nil)
            try file.createDataset("/model/layers.0.attn/weight", shape: [2, 3, 4], values: weights)
            try file.createDataset("/model/bias", shape: [5], values: bias)
            try file.createDataset("/model/scale", shape: [], values: [2.5])
            try file.createDataset("/model/empty", shape: [0, 3], values: [])
            try file.createGroup("/meta/deeper/still")
            try file.createGroup("/meta")  // existing: no error
            try file.setAttribute("format_version", .int64(1), on: "/meta")
            try file.setAttribute("config", .string("model:\n  dim: 192 # ünïcode\n"), on: "/meta")
            try file.setAttribute("lr", .double(3e-4), on: "/meta")
            try file.setAttribute("milestones", .int64Array([8, 11]), on: "/meta")
            try file.setAttribute("none", .int64Array([]), on: "/meta")
            try file.setAttribute("checksum", .string("abc"), on: "/model/bias")
            try file.setAttribute("checksum", .string("replaced"), on: "/model/bias")
            try file.setAttribute("created_by", .string("lors"))
            try file.close()
            XCTAssertFalse(file.isOpen)
            try file.close()  // second close is harmless
        }

        let file = try HDF5File(path: path, mode: .readOnly, comm: comm)
        defer { try? file.close() }
        XCTAssertEqual(try file.children(of: "/"), ["meta", "model"])
        XCTAssertEqual(try file.children(of: "/model"), ["bias", "empty", "layers.0.attn", "scale"])
        XCTAssertEqual(try file.children(of: "/meta"), ["deeper"])
        XCTAssertEqual(try file.kind(of: "/model"), .group)
        XCTAssertEqual(try file.kind(of: "/model/bias"), .dataset)
        XCTAssertTrue(try file.exists("/meta/deeper/still"))
        XCTAssertFalse(try file.exists("/meta/missing/child"))
        XCTAssertEqual(try file.shape(of: "/model/layers.0.attn/weight"), [2, 3, 4])
        XCTAssertEqual(try file.shape(of: "/model/scale"), [])
        XCTAssertEqual(try file.shape(of: "/model/empty"), [0, 3])
        XCTAssertEqual(try file.readFloats("/model/layers.0.attn/weight"), weights)
        XCTAssertEqual(try file.readFloats("/model/layers.0.attn/weight", range: 5..<19), Array(weights[5..<19]))
        XCTAssertEqual(try file.readFloats("/model/bias").map(\.bitPattern), bias.map(\.bitPattern))
        XCTAssertEqual(try file.readFloats("/model/scale"), [2.5])
        XCTAssertEqual(try file.readFloats("/model/empty"), [])
        XCTAssertEqual(try file.int64Attribute("format_version", of: "/meta"), 1)
        XCTAssertEqual(try file.stringAttribute("config", of: "/meta"), "model:\n  dim: 192 # ünïcode\n")
        XCTAssertEqual(try file.doubleAttribute("lr", of: "/meta"), 3e-4)
        XCTAssertEqual(try file.int64ArrayAttribute("milestones", of: "/meta"), [8, 11])
        XCTAssertEqual(try file.attribute("none", of: "/meta"), .int64Array([]))
        XCTAssertEqual(try file.attribute("checksum", of: "/model/bias"), .string("replaced"))
        XCTAssertEqual(try file.stringAttribute("created_by"), "lors")
        XCTAssertEqual(try file.attributeNames(of: "/meta"), ["config", "format_version", "lr", "milestones", "none"])
        XCTAssertTrue(try file.hasAttribute("lr", on: "/meta"))
        XCTAssertFalse(try file.hasAttribute("step", on: "/meta"))

        // Errors name the file and the object, and carry HDF5's own error stack.
        let missing = assertThrowsNativeError(try file.readFloats("/model/missing"))
        XCTAssertEqual(missing?.library, .hdf5)
        XCTAssertEqual(missing?.call, "H5Dopen2")
        XCTAssertTrue(missing?.description.contains("'/model/missing' in '\(path)'") ?? false, "\(String(describing: missing))")
        XCTAssertTrue(missing?.message.contains("H5Dopen2") ?? false, "\(String(describing: missing?.message))")
        let wrongType = assertThrowsNativeError(try file.int64Attribute("lr", of: "/meta"))
        XCTAssertEqual(wrongType?.library, .usage)
        let readOnly = assertThrowsNativeError(try file.write("/model/bias", values: bias))
        XCTAssertEqual(readOnly?.library, .hdf5)
        let badRange = assertThrowsNativeError(try file.readFloats("/model/bias", range: 3..<9))
        XCTAssertEqual(badRange?.library, .usage)
    }

    /// Several flat ranges written one after another compose the whole [3, 4, 5] tensor; in parallel mode
    /// each write is a collective call of the single rank.
    private func partialWrites(path: String, comm: MPIComm?) throws {
        let shape = [3, 4, 5]
        let expected = flatIndexValues(60)
        let ranges = [0..<7, 7..<7, 7..<23, 23..<41, 41..<59, 59..<60]
        do {
            let file = try HDF5File(path: path, mode: .create, comm: comm)
            try file.createDataset("/tensor", shape: shape)
            for range in ranges.reversed() {
                try file.write("/tensor", values: Array(expected[range]), range: range)
            }
            let countMismatch = assertThrowsNativeError(try file.write("/tensor", values: [1, 2], range: 0..<3))
            XCTAssertEqual(countMismatch?.library, .usage)
            try file.close()
        }
        let file = try HDF5File(path: path, mode: .readWrite, comm: comm)
        XCTAssertEqual(try file.readFloats("/tensor"), expected)
        for range in ranges + [0..<60, 19..<42, 4..<5] {
            XCTAssertEqual(try file.readFloats("/tensor", range: range), Array(expected[range]), "range \(range)")
        }
        // Overwrite a middle range in read-write mode and read everything back.
        try file.write("/tensor", values: [Float](repeating: -1, count: 12), range: 18..<30)
        var updated = expected
        updated.replaceSubrange(18..<30, with: [Float](repeating: -1, count: 12))
        XCTAssertEqual(try file.readFloats("/tensor"), updated)
        try file.close()
    }

    func testOpeningAMissingFileNamesIt() {
        let missingPath = path("does-not-exist.h5")
        let error = assertThrowsNativeError(try HDF5File(path: missingPath, mode: .readOnly))
        XCTAssertEqual(error?.library, .hdf5)
        XCTAssertEqual(error?.call, "H5Fopen")
        XCTAssertTrue(error?.description.contains(missingPath) ?? false, "\(String(describing: error))")
        XCTAssertFalse(error?.message.isEmpty ?? true)
    }
}
