import Foundation
import Testing
@testable import StepKit

@Suite struct ReportTests {
    func step(_ state: StepState) -> StepReport {
        StepReport(index: 0, id: "x", description: "x", state: state, seconds: 0.01, diff: "-a\n+b\n", actions: [], undo: [], message: nil, irreversible: false)
    }
    func report(_ mode: RunOptions.Mode, _ states: [StepState], error: String? = nil) -> RunReport {
        RunReport(runbook: "r", runId: "1", mode: mode,
                  hosts: [HostReport(host: "h", runId: "1", mode: mode, steps: states.map(step), failure: error.map { Failure(.commandFailed, $0) }, seconds: 0, roundTrips: 1)])
    }

    @Test func exitCodesFollowTerraformDetailedExitcode() {
        #expect(report(.dryRun, [.ok, .ok]).exitCode == 0)
        #expect(report(.dryRun, [.ok, .wouldChange]).exitCode == 2)
        #expect(report(.dryRun, [.depends]).exitCode == 2)
        #expect(report(.dryRun, [.wouldChange, .failed]).exitCode == 1)
        #expect(report(.apply, [.changed, .ok]).exitCode == 0)
        #expect(report(.apply, []).exitCode == 0)
        #expect(report(.apply, [], error: "unreachable").exitCode == 1)
    }

    @Test func colourOnlyOnATerminalWithoutNoColor() {
        #expect(ReportPrinter.wantsColour(isTTY: true, environment: [:]))
        #expect(!ReportPrinter.wantsColour(isTTY: false, environment: [:]), "piped")
        #expect(!ReportPrinter.wantsColour(isTTY: true, environment: ["NO_COLOR": "1"]))
        let plain = ReportPrinter(colour: false).line(host: "h", step(.wouldChange))
        #expect(!plain.contains("\u{1B}["))
        #expect(plain.hasPrefix("h: would change x"))
        #expect(plain.contains("\n    -a\n    +b"))
        #expect(ReportPrinter(colour: true).line(host: "h", step(.failed)).contains("\u{1B}[31m"))
    }
}

/// Run ids and journal stamps are formatted without Foundation's formatters (ICU costs each
/// process milliseconds): they must still say exactly what those would.
@Suite struct JournalTimeTests {
    @Test func runIdsAndStampsMatchFoundationsFormatting() {
        let iso = ISO8601DateFormatter(); iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let compact = DateFormatter(); compact.locale = Locale(identifier: "en_US_POSIX"); compact.timeZone = TimeZone(identifier: "UTC")
        compact.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        // Midnight, a leap day, single-digit fields, whole and fractional seconds, a far date.
        for t in [0, 951_782_400.5, 1_796_529_733.042, 1_796_529_733.999, 4_102_444_799.007] as [Double] {
            let date = Date(timeIntervalSince1970: t)
            #expect(UTCTime(date).format(date: "-", separator: "T", time: ":") == iso.string(from: date), "\(t)")
            #expect(RunID.make(date: date).hasPrefix(compact.string(from: date) + "-"), "\(t)")
        }
    }
}
