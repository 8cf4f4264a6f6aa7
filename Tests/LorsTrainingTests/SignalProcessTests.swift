import Foundation
import XCTest
import LorsTestSupport
import LorsTraining

/// Signals across processes: `SignalForwarding.runChild` (the `lors train --np` launcher's helper) with a shell
/// child, and the `lors` executable's stop on SIGTERM (exit 75) and immediate exit on a second SIGTERM (143).
final class SignalProcessTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-sig-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// What `waitFor` throws when the awaited event does not happen in time. Thrown out of a test method, XCTest
    /// records it as a failure with this description.
    struct WaitTimedOut: Error, CustomStringConvertible {
        let what: String
        let timeout: TimeInterval
        let file: StaticString
        let line: UInt
        var description: String {
            "\(file):\(line): \(what) did not happen: still waiting after \(timeout) s"
        }
    }

    /// Polls `condition` every 20 ms until it holds; throws `WaitTimedOut` (which fails the test) after `timeout` s.
    func waitFor(_ what: String, timeout: TimeInterval = 60, file: StaticString = #filePath, line: UInt = #line,
                 _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { throw WaitTimedOut(what: what, timeout: timeout, file: file, line: line) }
            usleep(20_000)
        }
    }

    func testWaitForThrowsWhenTheEventDoesNotHappen() throws {
        let start = Date()
        XCTAssertThrowsError(try waitFor("an event that never comes", timeout: 0.1) { false }) { error in
            let timedOut = error as? WaitTimedOut
            XCTAssertNotNil(timedOut, "\(type(of: error)): \(error)")
            XCTAssertFalse(error is XCTSkip)
            XCTAssertEqual(timedOut?.what, "an event that never comes")
            XCTAssertTrue("\(error)".contains("an event that never comes did not happen"), "\(error)")
        }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.1)
        var polls = 0
        XCTAssertNoThrow(try waitFor("the third poll", timeout: 10) { polls += 1; return polls == 3 })
        XCTAssertEqual(polls, 3)
    }

    private func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func testRunChildTurnsFirstSIGTERMIntoSIGUSR1AndSecondIntoSIGTERM() throws {
        let log = (directory as NSString).appendingPathComponent("child.log")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", """
            trap 'echo USR1 >> "$0"' USR1
            trap 'echo TERM >> "$0"; exit 143' TERM
            echo ready >> "$0"
            while :; do sleep 0.05; done
            """, log]
        final class Box: @unchecked Sendable {
            var outcome: SignalForwarding.Outcome?
            var failure: Error?
            var pid: Int32 = 0
            let process: Process
            init(_ process: Process) { self.process = process }
        }
        let box = Box(child)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do { box.outcome = try SignalForwarding.runChild(box.process) { box.pid = $0 } } catch { box.failure = error }
            done.signal()
        }
        try waitFor("the child to start") { box.pid > 0 && read(log).contains("ready") }
        kill(getpid(), SIGTERM)  // 1st: becomes SIGUSR1 for the child; the test process keeps running
        try waitFor("SIGUSR1 at the child") { read(log).contains("USR1") }
        kill(getpid(), SIGUSR1)  // SIGUSR1 is passed on as is
        try waitFor("a second SIGUSR1") { read(log).components(separatedBy: "USR1").count == 3 }
        kill(getpid(), SIGTERM)  // 2nd: SIGTERM
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertNil(box.failure)
        XCTAssertEqual(box.outcome, SignalForwarding.Outcome(status: 143, terminations: 2))
        XCTAssertEqual(read(log), "ready\nUSR1\nUSR1\nTERM\n")
    }

    func testRunChildReturnsTheStatusOfAChildKilledByASignal() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", "kill -KILL $$"]
        XCTAssertEqual(try SignalForwarding.runChild(child), SignalForwarding.Outcome(status: 128 + SIGKILL, terminations: 0))
        let ok = Process()
        ok.executableURL = URL(fileURLWithPath: "/bin/sh")
        ok.arguments = ["-c", "exit 75"]
        XCTAssertEqual(try SignalForwarding.runChild(ok).status, 75)
    }

    // MARK: - the lors executable

    /// Starts `lors train` on a long tiny run and waits for its first metrics line.
    private func startTraining(environment: [String: String] = [:]) throws -> (Process, Pipe, String) {
        let config = (directory as NSString).appendingPathComponent("tiny.yaml")
        try StopAndNonFiniteTests.yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let work = (directory as NSString).appendingPathComponent("work")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try lorsExecutable())
        process.arguments = ["train", config, "--work-dir", work, "--threads", "1", "--set", "train.epochs=1000",
                             // steps of about 0.4 s in a debug build, so two signals land inside one step
                             "--set", "model.vit.image_size=16", "--set", "model.vit.embed_dim=48", "--set", "model.vit.depth=2"]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let metrics = (work as NSString).appendingPathComponent("metrics.jsonl")
        try waitFor("the first training step") { read(metrics).contains("\"train\"") || !process.isRunning }
        XCTAssertTrue(process.isRunning)
        return (process, output, work)
    }

    func testLorsTrainStopsOnSIGTERMWithTheResumeCode() throws {
        let (process, output, work) = try startTraining()
        kill(process.processIdentifier, SIGTERM)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, text)
        XCTAssertEqual(process.terminationStatus, RunExitCode.resume, text)
        let log = read((work as NSString).appendingPathComponent("log.txt"))
        XCTAssertTrue(log.contains("stop requested by SIGTERM on 1 of 1 rank(s)"), log)
        XCTAssertTrue(log.contains("exiting with code 75"), log)
    }

    func testSecondSIGTERMWithinTheRepeatWindowIsTheSameRequest() throws {
        let (process, output, _) = try startTraining()
        kill(process.processIdentifier, SIGTERM)
        usleep(50_000) // two pending SIGTERMs would merge into one
        kill(process.processIdentifier, SIGTERM)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, RunExitCode.resume, text)
    }

    func testSecondSIGTERMExitsAtOnce() throws {
        let (process, output, _) = try startTraining(environment: ["LORS_SIGTERM_REPEAT_MS": "0"])
        kill(process.processIdentifier, SIGTERM)
        usleep(50_000) // two pending SIGTERMs would merge into one
        kill(process.processIdentifier, SIGTERM)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, text)
        XCTAssertEqual(process.terminationStatus, RunExitCode.killed, text)
    }
}
