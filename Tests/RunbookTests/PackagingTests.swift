import Foundation
import SupportKit
import Testing

/// The systemd units in packaging/ (issue 17): systemd refuses a unit whose ReadWritePaths names
/// a path that does not exist (status 226/NAMESPACE), and a WorkingDirectory nobody creates
/// stops it at start (200/CHDIR): the system user `ccr` is made without a home directory.
@Suite struct PackagingTests {
    static let units = ["ccr", "ccr-web", "ccr-watchdog"]

    static func settings(_ unit: String) throws -> [(key: String, value: String)] {
        let text = try String(contentsOf: Fixtures.packageRoot.appendingPathComponent("packaging/systemd/\(unit).service"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }
    }

    @Test("each unit makes its working directory (StateDirectory) and names only optional or self-made writable paths", arguments: units)
    func unitsCanStart(unit: String) throws {
        let s = try Self.settings(unit)
        let state = s.filter { $0.key == "StateDirectory" }.flatMap { $0.value.split(separator: " ").map { "/var/lib/\($0)" } }
        let working = try #require(s.first { $0.key == "WorkingDirectory" }?.value)
        #expect(state.contains(working), "\(unit): WorkingDirectory \(working) is not made by StateDirectory (\(state))")
        for path in s.filter({ $0.key == "ReadWritePaths" }).flatMap({ $0.value.split(separator: " ").map(String.init) }) {
            #expect(path.hasPrefix("-") || state.contains(path), "\(unit): ReadWritePaths \(path) must exist before the unit starts: prefix it with '-'")
        }
        #expect(s.contains { $0.key == "User" && $0.value == "ccr" })
        #expect(s.contains { $0.key == "LimitNOFILE" } || unit == "ccr-watchdog", "\(unit): a connection-serving unit sets LimitNOFILE")
    }
}
