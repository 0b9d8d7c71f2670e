import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Headless Debian `chromium`, driven through the DevTools protocol over a pipe
/// (`--remote-debugging-pipe`: JSON messages separated by NUL bytes on file descriptors 3 and 4).
///
/// Why a pipe and not the WebSocket endpoint: no WebSocket client is needed (nothing beyond the
/// C library and Foundation), no port is opened, and the browser dies with its pipe. Nothing is
/// downloaded: the test uses the system's chromium.
final class Chromium: @unchecked Sendable {
    // @unchecked: `pending` and `nextID` are guarded by `lock`; the fds are written under `lock`
    // and read only by the reader thread.
    private let lock = NSLock()
    private var pending: [Int: CheckedContinuation<Data, any Error>] = [:]
    private var nextID = 1
    private var closed = false
    private let toBrowser: Int32
    private let fromBrowser: Int32
    let pid: pid_t
    let profile: String
    private(set) var session: String = ""

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static var executable: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(width: Int = 1000, height: Int = 1300) throws {
        guard let executable = Self.executable else { throw Failure(description: "chromium not installed (apt-get install -y chromium)") }
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-chromium-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else { throw Failure(description: "pipe: \(errno)") }
        for fd in input + output { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // Keep the browser's ends away from 3 and 4, so dup2 really clears close-on-exec.
        let browserReads = fcntl(input[0], F_DUPFD_CLOEXEC, 10), browserWrites = fcntl(output[1], F_DUPFD_CLOEXEC, 10)
        close(input[0]); close(output[1])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, browserReads, 3)
        posix_spawn_file_actions_adddup2(&actions, browserWrites, 4)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so that the renderer and GPU processes are ended with it.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let arguments = [executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                         "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
                         "--hide-scrollbars", "--mute-audio", "--user-data-dir=\(profile)", "--window-size=\(width),\(height)", "about:blank"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, &argv, environ)
        close(browserReads); close(browserWrites)
        guard rc == 0 else { throw Failure(description: "cannot start chromium: \(String(cString: strerror(rc)))") }
        pid = child
        toBrowser = input[1]
        fromBrowser = output[0]
        let thread = Thread { [self] in readLoop() }
        thread.name = "cdp-reader"
        thread.start()
    }

    /// Attaches to the first page (flat session mode) so page commands can be sent.
    func attachToPage() async throws {
        let targets = try await send("Target.getTargets")
        let infos = (targets["targetInfos"] as? [[String: Any]]) ?? []
        guard let target = infos.first(where: { $0["type"] as? String == "page" }), let id = target["targetId"] as? String else {
            throw Failure(description: "chromium has no page target")
        }
        let attached = try await send("Target.attachToTarget", ["targetId": id, "flatten": true])
        session = attached["sessionId"] as? String ?? ""
        _ = try await page("Page.enable")
    }

    /// A browser-level command.
    func send(_ method: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        try await command(method, params, session: nil)
    }

    /// A command to the attached page.
    func page(_ method: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        try await command(method, params, session: session)
    }

    private func command(_ method: String, _ params: [String: Any], session: String?) async throws -> [String: Any] {
        var message: [String: Any] = ["method": method, "params": params]
        if let session { message["sessionId"] = session }
        let reply = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            lock.lock()
            defer { lock.unlock() }
            if closed { continuation.resume(throwing: Failure(description: "chromium exited")); return }
            let id = nextID
            nextID += 1
            message["id"] = id
            guard var bytes = try? JSONSerialization.data(withJSONObject: message) else {
                continuation.resume(throwing: Failure(description: "cannot encode \(method)")); return
            }
            bytes.append(0)
            pending[id] = continuation
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(toBrowser, $0.baseAddress! + offset, bytes.count - offset) }
                if n < 0 { if errno == EINTR { continue }; pending.removeValue(forKey: id)?.resume(throwing: Failure(description: "write: \(errno)")); return }
                offset += n
            }
        }
        let object = try JSONSerialization.jsonObject(with: reply) as? [String: Any] ?? [:]
        if let error = object["error"] as? [String: Any] {
            throw Failure(description: "\(method): \(error["message"] ?? error)")
        }
        return object["result"] as? [String: Any] ?? [:]
    }

    private func readLoop() {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fromBrowser, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            buffer.append(contentsOf: chunk[0..<n])
            while let end = buffer.firstIndex(of: 0) {
                let message = buffer[buffer.startIndex..<end]
                buffer = Data(buffer[(end + 1)...])
                guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any], let id = object["id"] as? Int else { continue }
                lock.lock()
                let continuation = pending.removeValue(forKey: id)
                lock.unlock()
                continuation?.resume(returning: Data(message))
            }
        }
        lock.lock()
        closed = true
        let waiting = pending
        pending = [:]
        lock.unlock()
        for c in waiting.values { c.resume(throwing: Failure(description: "chromium exited")) }
    }

    // MARK: Conveniences

    /// Evaluates JavaScript in the page (promises awaited) and returns its JSON-able value.
    func evaluate(_ expression: String) async throws -> Any? {
        let result = try await page("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw Failure(description: "script failed: \(exception["text"] ?? "")\((exception["exception"] as? [String: Any])?["description"] ?? "")")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    func navigate(_ url: String) async throws {
        _ = try await page("Page.navigate", ["url": url])
        try await waitFor("location.href === \(Self.quote(url)) && document.readyState === 'complete'", timeout: .seconds(10))
    }

    /// Waits until `condition` (JavaScript) is true.
    func waitFor(_ condition: String, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await evaluate("!!(\(condition))")) as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure(description: "timed out waiting for \(condition)")
    }

    func screenshot(to path: String) async throws {
        let shot = try await page("Page.captureScreenshot", ["format": "png", "captureBeyondViewport": false])
        guard let base64 = shot["data"] as? String, let png = Data(base64Encoded: base64) else { throw Failure(description: "no screenshot data") }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try png.write(to: URL(fileURLWithPath: path))
    }

    static func quote(_ s: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [s])
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }

    /// Ends the browser and its helper processes, and removes its profile.
    func stop() {
        close(toBrowser)
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(fromBrowser)
        try? FileManager.default.removeItem(atPath: profile)
    }
}
