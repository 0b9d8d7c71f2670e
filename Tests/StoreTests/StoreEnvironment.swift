import Foundation
import Store

/// The two database backends the same suite runs against.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case mariadb
    var description: String { rawValue }
}

/// A writer store (cc_rw), a reader store (cc_ro, read-only), and for MariaDB the real server,
/// all removed by `withStoreEnvironment` even when the test fails.
struct StoreEnvironment: Sendable {
    let backend: Backend
    let directory: URL
    let writer: any CaptionStore
    let reader: any CaptionStore
    let mariadb: MariaDBServer?
    let writerConfiguration: StoreConfiguration
    let readerConfiguration: StoreConfiguration
    var spoolDirectory: String { directory.appendingPathComponent("spool").path }
}

/// Options tests use: a fast retry and short timeouts, so outages resolve within seconds.
func testOptions(spool: String?, readOnly: Bool = false) -> StoreOptions {
    StoreOptions(spoolDirectory: spool, readOnly: readOnly, retryIntervalSeconds: 0.2, timeoutSeconds: 2,
                 liveSettleMilliseconds: 300)
}

func withStoreEnvironment(_ backend: Backend, _ body: (StoreEnvironment) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-store-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var server: MariaDBServer?
    var stores: [any CaptionStore] = []
    do {
        let writerConfiguration: StoreConfiguration
        let readerConfiguration: StoreConfiguration
        switch backend {
        case .sqlite:
            let path = directory.appendingPathComponent("ccr.sqlite").path
            writerConfiguration = .sqlite(path: path)
            readerConfiguration = .sqlite(path: path)
        case .mariadb:
            let started = try await MariaDBServer.start()
            server = started
            writerConfiguration = started.readWrite
            readerConfiguration = started.readOnly
        }
        let spool = directory.appendingPathComponent("spool").path
        let writer = try await openStore(writerConfiguration, options: testOptions(spool: spool))
        stores.append(writer)
        let reader = try await openStore(readerConfiguration, options: testOptions(spool: nil, readOnly: true))
        stores.append(reader)
        try await body(StoreEnvironment(backend: backend, directory: directory, writer: writer, reader: reader, mariadb: server,
                                        writerConfiguration: writerConfiguration, readerConfiguration: readerConfiguration))
    } catch {
        for store in stores { await store.close() }
        server?.stop()
        try? FileManager.default.removeItem(at: directory)
        throw error
    }
    for store in stores { await store.close() }
    server?.stop()
    try? FileManager.default.removeItem(at: directory)
}

func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// A tuner with an open program, the usual start of a test.
func startTuner(_ store: any CaptionStore, description: String = "test tuner", name: String? = nil) async throws -> (node: Int64, tuner: Int64, program: Int64) {
    let node = try await store.registerNode(hostname: "repo-test")
    let tuner = try await store.tunerConnected(TunerConnection(nodeID: node, address: "198.51.100.7", port: 40_000,
                                                               description: description, connectedAt: nowMs()))
    let program = try await store.programStarted(tunerID: tuner, startedAt: nowMs(), name: name)
    return (node, tuner, program)
}

func line(_ text: String, program: Int64, tuner: Int64, at ms: Int64) -> CaptionLineInput {
    CaptionLineInput(programID: program, tunerID: tuner, startMs: ms, endMs: ms + 1500, mode: "pop-on", text: text, capturedAt: nowMs())
}
