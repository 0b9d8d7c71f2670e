import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// A failed external command, named so that the user sees which step of the lab broke.
public struct ShellError: Error, CustomStringConvertible, LocalizedError {
    /// What was run (program and arguments; scripts are shown by their label, never their text,
    /// because scripts may carry secrets on stdin).
    public let command: String
    public let status: Int32
    public let stderr: String

    public var description: String {
        let detail = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let tail = detail.split(separator: "\n").suffix(12).joined(separator: "\n")
        return "command failed (exit \(status)): \(command)" + (tail.isEmpty ? "" : "\n\(tail)")
    }

    public var errorDescription: String? { description }
}

/// Output of a finished command.
public struct ShellResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs external programs with Foundation.Process.
///
/// The lab is mostly glue around Debian tools (ip, mount, debootstrap, losetup, ...), so one small
/// runner that reports the failing command with its stderr keeps every call site short. Secrets go
/// through `input` (stdin), never through arguments, so they do not show in process lists.
public struct Shell: Sendable {
    /// Extra environment for every command (PATH is always set to include the sbin directories).
    public var environment: [String: String]

    public init(environment: [String: String] = [:]) {
        self.environment = environment
    }

    /// Runs `program` with `arguments`; throws `ShellError` on a non-zero exit unless `check` is false.
    @discardableResult
    public func run(_ program: String, _ arguments: [String] = [], input: String? = nil,
                    check: Bool = true, label: String? = nil) throws -> ShellResult {
        var env = ProcessInfo.processInfo.environment
        let basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env["PATH"] = (env["PATH"].map { $0 + ":" } ?? "") + basePath
        env["LC_ALL"] = "C"
        for (key, value) in environment { env[key] = value }

        let shown = label ?? ([program] + arguments).joined(separator: " ")
        // Output goes to unlinked temporary files, not pipes: a daemon started by the command
        // (setsid -f) could otherwise inherit a pipe end and keep the read from ever ending.
        let outFile = try TemporaryOutput()
        let errFile = try TemporaryOutput()
        let status: Int32
        do {
            status = try Spawn.run(["/usr/bin/env", program] + arguments, environment: env, input: input,
                                   stdout: outFile.descriptor, stderr: errFile.descriptor)
        } catch {
            throw ShellError(command: shown, status: -1, stderr: "cannot start: \(error)")
        }
        let result = ShellResult(status: status, stdout: outFile.contents(), stderr: errFile.contents())
        if check && result.status != 0 {
            throw ShellError(command: shown, status: result.status, stderr: result.stderr + result.stdout)
        }
        return result
    }

    /// Runs a bash script (`set -euo pipefail`). `label` names it in errors instead of its text.
    @discardableResult
    public func bash(_ script: String, label: String, check: Bool = true) throws -> ShellResult {
        try run("bash", ["-c", "set -euo pipefail\n" + script], check: check, label: label)
    }

    /// True when `program` exits 0.
    public func succeeds(_ program: String, _ arguments: [String] = []) -> Bool {
        (try? run(program, arguments, check: false).status) == 0
    }
}

/// An unlinked temporary file that collects a command's output.
private final class TemporaryOutput {
    let descriptor: Int32

    init() throws {
        var template = Array("/tmp/ccrun-lab-out.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw ShellError(command: "mkstemp", status: errno, stderr: String(cString: strerror(errno))) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        descriptor = fd
    }

    func contents() -> String {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let count = pread(descriptor, &buffer, buffer.count, offset)
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
            offset += off_t(count)
        }
        return String(decoding: data, as: UTF8.self)
    }

    deinit { close(descriptor) }
}

/// posix_spawn + waitpid. Foundation.Process was not used: on this platform it sometimes did not
/// notice a child's exit (zombie left, caller hung), and it does not close unrelated descriptors
/// in the child, which daemons started by the lab would inherit.
enum Spawn {
    struct Failure: Error, CustomStringConvertible {
        let call: String
        let code: Int32
        var description: String { "\(call): \(String(cString: strerror(code)))" }
    }

    /// glibc's posix_spawn_file_actions_addclosefrom_np (a GNU extension the Glibc module does not
    /// import), so children get only fds 0-2 and daemons hold nothing of ours.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFromAction: CloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    static func run(_ argv: [String], environment: [String: String], input: String?,
                    stdout: Int32, stderr: Int32) throws -> Int32 {
        var inputFDs: [Int32] = [-1, -1]
        if input != nil {
            guard pipe(&inputFDs) == 0 else { throw Failure(call: "pipe", code: errno) }
            inputFDs.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inputFDs[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        if let closeFrom = closeFromAction { _ = closeFrom(&actions, 3) }

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        if input != nil { close(inputFDs[0]) }
        guard rc == 0 else {
            if input != nil { close(inputFDs[1]) }
            throw Failure(call: "posix_spawn \(argv[0])", code: rc)
        }
        if let input {
            let bytes = Array(input.utf8)
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBufferPointer { Glibc.write(inputFDs[1], $0.baseAddress, $0.count) }
                if n <= 0 { break }
                written += n
            }
            close(inputFDs[1])
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(call: "waitpid", code: errno) }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG spelled out (C macros are not imported).
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// Quotes a string for a POSIX shell.
func shellQuote(_ value: String) -> String {
    "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
