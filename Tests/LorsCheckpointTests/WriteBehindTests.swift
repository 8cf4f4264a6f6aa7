import Foundation
@testable import LorsCheckpoint
import XCTest

/// `WriteBehind` hands the kernel only whole pages inside the written extents (pages shared with HDF5 metadata stay
/// for the fsync) and merges adjacent extents up to `batchBytes`. (Every checkpoint the other tests write goes through
/// it, serial and parallel, so those show the files stay intact.)
final class WriteBehindTests: XCTestCase {
    private final class Spans: @unchecked Sendable {
        private let lock = NSLock()
        private var spans: [Range<Int>] = []
        func append(_ span: Range<Int>) { lock.lock(); spans.append(span); lock.unlock() }
        var all: [Range<Int>] { lock.lock(); defer { lock.unlock() }; return spans }
    }

    func testWholePagesOnlyAndAdjacentExtentsMerged() {
        let page = WriteBehind.pageBytes
        let spans = Spans()
        let finished = DispatchSemaphore(value: 0)
        let behind = WriteBehind(start: { spans.append($0) }, done: { finished.signal() })
        behind.wrote(offset: 100, bytes: 3 * page)              // pages 1 and 2 whole (page 0 and 3 shared)
        behind.wrote(offset: 3 * page, bytes: 2 * page)         // adjacent: merged into 1..<5
        behind.wrote(offset: 10 * page + 1, bytes: page)        // no whole page
        behind.wrote(offset: 20 * page, bytes: page)            // a new span
        behind.finish()
        finished.wait()
        XCTAssertEqual(spans.all, [page..<(5 * page), (20 * page)..<(21 * page)])
    }

    func testLongRunsAreStartedInBatches() {
        let batch = WriteBehind.batchBytes
        let spans = Spans()
        let finished = DispatchSemaphore(value: 0)
        let behind = WriteBehind(start: { spans.append($0) }, done: { finished.signal() })
        for i in 0..<5 { behind.wrote(offset: i * batch / 2, bytes: batch / 2) }
        behind.finish()
        finished.wait()
        XCTAssertEqual(spans.all, [0..<batch, batch..<(2 * batch), (2 * batch)..<(5 * batch / 2)])
    }

    func testMissingFileGivesNoHints() {
        XCTAssertNil(WriteBehind(path: "/nonexistent/lors-write-behind.h5"))
    }
}
