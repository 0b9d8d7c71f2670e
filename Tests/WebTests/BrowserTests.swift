import Captions
import Foundation
import Hummingbird
import Logging
import Store
import SupportKit
import Testing
import TunerServer
@testable import Web

/// The whole path in a real browser: CCExtractor's bytes (the captured `-sendto` stream) over TCP
/// into a real tuner server writing SQLite and the archive; `ccr web`'s site reading them
/// read-only; headless Chromium showing the pages.
@Suite("Web in a real browser", .serialized)
struct BrowserTests {
    static var chromiumAvailable: Bool { Chromium.executable != nil || Fixtures.isCI }
    static let artifacts = Fixtures.packageRoot.appendingPathComponent(".build/artifacts").path

    @Test("a live page opened before streaming shows each cue of the.tudors within one second of its bytes; search links to 89's program; downloads",
          .enabled(if: Fixtures.shouldRunSharedTests && chromiumAvailable, "needs ../shared/fixtures and Debian's chromium"),
          .timeLimit(.minutes(4)))
    func liveSearchAndDownloads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-web-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("ccr.sqlite").path
        let archive = directory.appendingPathComponent("archive").path

        // ccr serve: tuners in, SQLite and archive out.
        var serverSettings = ServerConfiguration()
        serverSettings.host = "127.0.0.1"
        serverSettings.port = 0
        serverSettings.metricsPort = nil
        serverSettings.archiveDirectory = archive
        serverSettings.spoolDirectory = nil
        var logger = Logger(label: "test.ccr.serve")
        logger.logLevel = .warning
        let writer = try await openStore(.sqlite(path: database), options: StoreOptions())
        let server = try await TunerServer.start(configuration: serverSettings, store: writer, logger: logger)

        // ccr web: read-only over the same file and archive.
        let source = StoreSource(configuration: .sqlite(path: database), timeoutSeconds: 2, retrySeconds: 0)
        let site = WebSite(source: source, archiveDirectory: archive)
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let app = WebServer.application(site: site, host: "127.0.0.1", port: 0) { port in portContinuation.yield(port) }
        let webTask = Task { try await app.runService(gracefulShutdownSignals: []) }
        var webPort = 0
        for await p in portStream { webPort = p; break }
        let base = "http://127.0.0.1:\(webPort)"

        let browser = try Chromium()
        do {
            try await runScenario(browser: browser, base: base, tunerPort: server.port)
        } catch {
            browser.stop()
            webTask.cancel()
            await site.feed.shutdown()
            await server.shutdown()
            await source.close()
            throw error
        }
        browser.stop()
        webTask.cancel()
        await site.feed.shutdown()
        _ = try? await webTask.value
        await server.shutdown()
        await source.close()
    }

    func runScenario(browser: Chromium, base: String, tunerPort: Int) async throws {
        try await browser.attachToPage()
        // The live page, opened BEFORE any byte is streamed and never reloaded.
        try await browser.navigate(base + "/")
        try await browser.waitFor("document.body.dataset.live === 'open'", timeout: .seconds(5))

        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let blocks = try CaptureBlock.parse(capture)
        let expected = try ExpectedCue.decode(blocks)
        #expect(expected.count == 22)

        // Stream at the recording's own pace, noting when each record's bytes were sent.
        let observer = Task { try await Self.observeLiveList(browser: browser, until: expected.count, timeout: .seconds(100)) }
        let sentAt = try await TunerStream.send(blocks, to: tunerPort, description: "Live test tuner", realTime: true)
        let seen = try await observer.value

        #expect(seen.count == expected.count, "every cue appears on the page")
        var worst: Int64 = 0
        for (i, cue) in expected.enumerated() where i < seen.count {
            #expect(seen[i].text == cue.text, "cue \(i + 1) shows its text")
            let latency = seen[i].at - sentAt[cue.completedBy]
            worst = max(worst, latency)
            #expect(latency <= 1000, "cue \(i + 1) appeared \(latency) ms after its bytes reached ccr")
        }
        print("live page: \(seen.count) cues, worst latency from bytes to DOM \(worst) ms")
        try await browser.screenshot(to: Self.artifacts + "/web-live.png")

        // Downloads of that program, fetched by the browser.
        let programs = try #require(try await browser.evaluate("fetch('/api/programs').then(r => r.json())") as? [String: Any])
        let list = try #require(programs["programs"] as? [[String: Any]])
        let tudors = try #require(list.first { $0["tunerDescription"] as? String == "Live test tuner" })
        let tudorsID = try #require(tudors["id"] as? String)
        #expect(tudors["name"] as? String == "Tudors, The: Episode 208")
        let reference = String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self)
        let archived = try #require(try await browser.evaluate("fetch('/programs/\(tudorsID)/srt').then(async r => [r.headers.get('X-CCR-Source'), await r.text()])") as? [String])
        #expect(archived[0] == "archive")
        #expect(archived[1] == reference, "the SRT download equals the.tudors.sendto.srt")
        let fromDatabase = try #require(try await browser.evaluate("fetch('/programs/\(tudorsID)/srt?source=db').then(r => r.text())") as? String)
        #expect(fromDatabase == stripTags(reference), "from the database: the same but for the italics tags it does not keep")
        let vtt = try #require(try await browser.evaluate("fetch('/programs/\(tudorsID)/vtt').then(r => r.text())") as? String)
        let vttGot = vttCues(vtt), srtWant = srtCues(reference)
        #expect(vttGot.count == srtWant.count)
        for (g, w) in zip(vttGot, srtWant) {
            #expect(g.times == w.times)
            #expect(g.rows == w.rows.map { stripTags($0).trimmingCharacters(in: .whitespaces) })
        }

        // The program's page offers its CEA-708 service; choosing it shows that service's captions.
        try await browser.navigate(base + "/programs/\(tudorsID)")
        try await browser.waitFor("document.readyState === 'complete'", timeout: .seconds(10))
        let choice = try await browser.evaluate("""
            (function(){var n=document.getElementById('services');if(!n)return null;var r=n.getBoundingClientRect();
            return [r.width>0&&r.height>0&&getComputedStyle(n).visibility==='visible',
                    Array.from(n.querySelectorAll('[data-service]')).map(e=>e.dataset.service+':'+e.tagName)]})()
            """) as? [Any]
        #expect(choice?.first as? Bool == true, "the service choice is visible")
        #expect(choice?.last as? [String] == ["0:STRONG", "1:A"], "608 shown, service 1 offered")
        let firstRow = "document.querySelector('.transcript li .text').textContent"
        #expect((try await browser.evaluate(firstRow) as? String)?.contains("Previously") == true)
        _ = try await browser.evaluate("document.querySelector('#services a[data-service=\"1\"]').click(); true")
        try await browser.waitFor("location.search === '?service=1' && document.readyState === 'complete'", timeout: .seconds(10))
        #expect((try await browser.evaluate(firstRow) as? String)?.contains("- Will you ask if Francis") == true)
        #expect(try await browser.evaluate("document.querySelector('.transcript').dataset.service") as? String == "1")
        try await browser.screenshot(to: Self.artifacts + "/web-service.png")

        // 89 through the same server (at full speed), then a search typed into the page.
        let blocks89 = try CaptureBlock.parse([UInt8](try Fixtures.sharedData("89.sendto.bin")))
        _ = try await TunerStream.send(blocks89, to: tunerPort, description: "Channel 89", realTime: false)
        let expected89 = try ExpectedCue.decode(blocks89)
        var program89: [String: Any] = [:]
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let all = try #require(try await browser.evaluate("fetch('/api/programs').then(r => r.json())") as? [String: Any])
            if let p = (all["programs"] as? [[String: Any]])?.first(where: { $0["tunerDescription"] as? String == "Channel 89" }),
               p["lineCount"] as? Int == expected89.count {
                program89 = p
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let id89 = try #require(program89["id"] as? String, "89's program is stored with all its lines")
        let sequence = try #require(expected89.firstIndex { $0.text.contains("YOU ARE LIKE A FINE WINE GETTING") })

        _ = try await browser.page("Emulation.setDeviceMetricsOverride", ["width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true])
        try await browser.navigate(base + "/")
        _ = try await browser.evaluate("""
            (function(){var f=document.querySelector('header form');f.querySelector('input[name=q]').value='"fine wine getting"';f.submit();return true})()
            """)
        try await browser.waitFor("location.pathname === '/search' && document.readyState === 'complete'", timeout: .seconds(10))
        let href = try await browser.evaluate("document.querySelector('.results a.program').getAttribute('href')") as? String
        #expect(href == "/programs/\(id89)#l\(sequence)", "the search result links to that moment of 89's program")
        let mark = try await browser.evaluate("document.querySelector('.results mark').textContent") as? String
        #expect(mark?.uppercased().contains("FINE") == true)
        try await browser.screenshot(to: Self.artifacts + "/web-search.png")

        // Following the link lands on that line of the transcript.
        _ = try await browser.evaluate("document.querySelector('.results a.program').click(); true")
        try await browser.waitFor("location.pathname === '/programs/\(id89)' && document.readyState === 'complete'", timeout: .seconds(10))
        let target = try await browser.evaluate("document.querySelector(':target .text').textContent") as? String
        #expect(target?.contains("FINE WINE GETTING") == true)
        try await browser.screenshot(to: Self.artifacts + "/web-transcript.png")
    }

    /// Polls the page's live list every 50 ms; notes when each line first appeared (wall clock, ms).
    static func observeLiveList(browser: Chromium, until count: Int, timeout: Duration) async throws -> [(text: String, at: Int64)] {
        var seen: [(text: String, at: Int64)] = []
        let deadline = ContinuousClock.now + timeout
        while seen.count < count, ContinuousClock.now < deadline {
            let texts = try await browser.evaluate("Array.from(document.querySelectorAll('#live li .text')).map(e => e.textContent)") as? [String] ?? []
            let now = wallMilliseconds()
            for text in texts.dropFirst(seen.count) { seen.append((text, now)) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return seen
    }
}

func wallMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// One block of CCExtractor's `-sendto` protocol: command byte, 10-byte decimal length, data, CRLF.
struct CaptureBlock: Sendable {
    let command: UInt8
    let data: [UInt8]

    var bytes: [UInt8] {
        var length = Array(String(data.count).utf8)
        length += [UInt8](repeating: 0, count: 10 - length.count)
        return [command] + length + data + [13, 10]
    }

    static func parse(_ bytes: [UInt8]) throws -> [CaptureBlock] {
        var blocks: [CaptureBlock] = []
        var i = 0
        while i < bytes.count {
            guard i + 11 <= bytes.count else { throw Chromium.Failure(description: "truncated capture") }
            let digits = bytes[(i + 1)..<(i + 11)].prefix { $0 != 0 }
            guard let length = Int(String(decoding: digits, as: UTF8.self)), i + 11 + length + 2 <= bytes.count else {
                throw Chromium.Failure(description: "bad block length at \(i)")
            }
            blocks.append(CaptureBlock(command: bytes[i], data: Array(bytes[(i + 11)..<(i + 11 + length)])))
            i += 11 + length + 2
        }
        return blocks
    }

    /// BIN_DATA records: a 10-byte header block (timestamp, count) joined with its triplets block.
    static func records(_ blocks: [CaptureBlock]) -> [(timestamp: Int64, blocks: [CaptureBlock])] {
        var records: [(Int64, [CaptureBlock])] = []
        var header: CaptureBlock?
        for block in blocks where block.command == 6 {
            if let h = header {
                let ts = h.data.prefix(8).enumerated().reduce(Int64(0)) { $0 | Int64($1.element) << (8 * $1.offset) }
                records.append((ts, [h, block]))
                header = nil
            } else {
                header = block
            }
        }
        return records
    }
}

/// What the page must show: each cue's transcript text, and the record whose arrival completes it
/// (index into the records; the record count means "the end of the stream").
struct ExpectedCue: Sendable {
    let text: String
    let completedBy: Int

    static func decode(_ blocks: [CaptureBlock]) throws -> [ExpectedCue] {
        let records = CaptureBlock.records(blocks)
        var stream: [UInt8] = blocks.first { $0.command == 5 }?.data ?? []
        for r in records { for b in r.blocks { stream += b.data } }
        var decoder = CaptionDecoder(options: DecoderOptions(channel: .cc1, xds: true))
        var cues: [ExpectedCue] = []
        var index = 0
        try RCWTFileReader(bytes: stream).forEachRecord { record in
            for case .cue(let cue) in decoder.decode(record) where !cue.lines.isEmpty {
                cues.append(ExpectedCue(text: cue.plainText, completedBy: index))
            }
            index += 1
        }
        for case .cue(let cue) in decoder.finish() where !cue.lines.isEmpty {
            cues.append(ExpectedCue(text: cue.plainText, completedBy: records.count))
        }
        return cues
    }
}

/// A tuner: sends a capture's blocks over TCP like CCExtractor's client.
enum TunerStream {
    /// Sends the handshake and records (at the recording's pace when `realTime`), then closes.
    /// Returns the wall-clock time each record was sent, plus the close time at the end.
    static func send(_ blocks: [CaptureBlock], to port: Int, description: String, realTime: Bool) async throws -> [Int64] {
        let connection = try LoopbackSocket(port: port)
        // The socket closes when `connection` goes; `fd` is used until the end.
        defer { withExtendedLifetime(connection) {} }
        let fd = connection.fd
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))

        func write(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
                if n < 0 { if errno == EINTR { continue }; throw Chromium.Failure(description: "write to ccr: \(errno)") }
                offset += n
            }
        }
        // PASSWORD (empty), CC_DESC, BIN_HEADER as the client sends them.
        try write(CaptureBlock(command: 2, data: []).bytes)
        try write(CaptureBlock(command: 4, data: Array(description.utf8)).bytes)
        if let header = blocks.first(where: { $0.command == 5 }) { try write(header.bytes) }
        let records = CaptureBlock.records(blocks)
        var sentAt: [Int64] = []
        sentAt.reserveCapacity(records.count + 1)
        let clock = ContinuousClock()
        let start = clock.now
        let first = records.first?.timestamp ?? 0
        var pending: [UInt8] = []
        for record in records {
            if realTime {
                try await clock.sleep(until: start + .milliseconds(record.timestamp - first))
                try write(record.blocks.flatMap(\.bytes))
            } else {
                pending += record.blocks.flatMap(\.bytes)
                if pending.count > 65_536 { try write(pending); pending = [] }
            }
            sentAt.append(wallMilliseconds())
        }
        try write(pending)
        shutdown(fd, Int32(SHUT_WR))
        sentAt.append(wallMilliseconds())
        // Wait for the server to close its side (it has read everything).
        var sink = [UInt8](repeating: 0, count: 64)
        while read(fd, &sink, sink.count) > 0 {}
        return sentAt
    }
}
