import StarlingPOSIX
import XCTest

/// The daemon unmaps its clean code after start-up (Configuration.dropStartupCode, idle
/// resident memory in Benchmarks/README.md): the pages it still runs come back from the file.
final class ResidentCodeTests: XCTestCase {
    func testDroppingCleanCodeKeepsTheProcessRunning() throws {
        // Code and data touched before: the test binary and the runtime's libraries.
        let before = (0..<1_000).map { $0 &* 2_654_435_761 }.reduce(0, &+)
        let dropped = System.dropCleanCode()
        XCTAssertGreaterThan(dropped, 0, "some executable file-backed pages were resident")
        // Everything still runs (code faults back in) and data is intact (data mappings are
        // never dropped: they are not executable, or hold pages of their own).
        let after = (0..<1_000).map { $0 &* 2_654_435_761 }.reduce(0, &+)
        XCTAssertEqual(before, after)
        XCTAssertFalse(try System.randomBytes(16).isEmpty)
        XCTAssertGreaterThan(System.residentBytes(), 0)
    }
}
