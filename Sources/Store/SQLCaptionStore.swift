// Placeholder engine while the real one lands; replaced in the next commit.
final class SQLCaptionStore: CaptionStore {
    static func open(_ configuration: StoreConfiguration, options: StoreOptions) async throws -> SQLCaptionStore {
        throw StoreError.invalidArgument("store engine not implemented yet")
    }
    func registerNode(hostname: String) async throws -> Int64 { throw StoreError.closed }
    func heartbeat(nodeID: Int64) async throws -> Bool { throw StoreError.closed }
    func tunerConnected(_ connection: TunerConnection) async throws -> Int64 { throw StoreError.closed }
    func tunerDisconnected(tunerID: Int64, at: Int64) async throws { throw StoreError.closed }
    func programStarted(tunerID: Int64, startedAt: Int64, name: String?) async throws -> Int64 { throw StoreError.closed }
    func programRenamed(programID: Int64, name: String) async throws { throw StoreError.closed }
    func programEnded(programID: Int64, endedAt: Int64) async throws { throw StoreError.closed }
    func appendLines(_ lines: [CaptionLineInput]) async throws { throw StoreError.closed }
    func recordXDS(_ items: [XDSItemInput]) async throws { throw StoreError.closed }
    func markStaleTuners(heartbeatOlderThan seconds: Double) async throws -> Int { throw StoreError.closed }
    func tuners(includeDisconnected: Bool) async throws -> [TunerStatus] { throw StoreError.closed }
    func programs(_ query: ProgramQuery) async throws -> [ProgramSummary] { throw StoreError.closed }
    func program(id: Int64) async throws -> ProgramSummary? { throw StoreError.closed }
    func lines(programID: Int64) async throws -> [CaptionLine] { throw StoreError.closed }
    func xdsItems(programID: Int64) async throws -> [XDSItem] { throw StoreError.closed }
    func liveCursorNow() async throws -> LiveCursor { throw StoreError.closed }
    func liveLines(after cursor: LiveCursor, tunerID: Int64?, limit: Int) async throws -> LivePage { throw StoreError.closed }
    func search(_ query: SearchQuery) async throws -> [SearchHit] { throw StoreError.closed }
    func spoolDepth() async -> Int { 0 }
    func waitForSpoolDrained(timeoutSeconds: Double) async -> Bool { true }
    func close() async {}
}
