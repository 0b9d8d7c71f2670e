import Testing
@testable import StepKit

/// The test hook's parsing (the stopping itself is exercised by ProcessFaultTests, which
/// SIGKILL a real ccrun at these points).
@Suite struct TestStopPointsTests {
    @Test func parsesACommaSeparatedListAndTheUploadThreshold() {
        let stops = TestStopPoints(" before-step:3, after-change:6 ,upload-bytes:2000000,")
        #expect(stops.points == ["before-step:3", "after-change:6", "upload-bytes:2000000"])
        #expect(stops.contains("after-change:6") && !stops.contains("after-change:7"))
        #expect(stops.uploadBytes == 2_000_000)
    }

    @Test func nothingSetMeansNoStops() {
        #expect(TestStopPoints("").isEmpty && TestStopPoints.none.uploadBytes == nil)
        #expect(RunOptions(stops: .none).stops.isEmpty)
    }
}
